"""Custom Keras layers that trained models contain, registered so `model.keras` loads anywhere.

A model saved by the trainer holds its backbone's input preprocessing as layers (it takes raw
0-255 RGB). Where Keras has no built-in layer for that preprocessing, the layer lives here, in
common code, so that the exporter and evaluator can load `model.keras` after
`import components.common.layers` without importing the trainer.
"""

import keras

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # ImageNet means, BGR order (keras imagenet_utils, mode="caffe")


@keras.saving.register_keras_serializable(package="transferline")
class CaffePreprocessing(keras.layers.Layer):
    """RGB 0-255 -> BGR minus the per-channel ImageNet mean: what VGG16's (caffe-style) weights expect.

    Numerically `keras.applications.vgg16.preprocess_input`, as a layer inside the model.
    """

    def __init__(self, mean_bgr=CAFFE_BGR_MEAN, **kwargs):
        super().__init__(**kwargs)
        self.mean_bgr = tuple(float(m) for m in mean_bgr)

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        bgr = keras.ops.flip(inputs, axis=-1)
        return bgr - keras.ops.cast(keras.ops.convert_to_tensor(self.mean_bgr), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean_bgr": list(self.mean_bgr)}
