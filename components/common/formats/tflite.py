"""TFLite (LiteRT) variants of the float32 model: float32, float16, dynamic-range and full-integer int8.

Every variant is converted from one frozen concrete function of `Source.pixels_function`, taking
what the Keras model takes (raw RGB 0-255, [batch, h, w, 3]), and carries the standard TFLite
metadata MediaPipe Tasks reads (tflite_metadata.py). Tracing and freezing once costs about 1 s of
CPU for MobileNetV2; `from_keras_model`/`from_saved_model` re-export or reload the model for each
variant (about 7 s of CPU each, 20-30 s wall on 2 busy cores). The int8 calibrator sees train-split
images through the shared serving preprocessing.
"""

import os
import warnings

import numpy as np

from components.common.formats.base import Format, model_bytes

VARIANTS = ("float32", "float16", "dynamic_range", "int8")


def frozen_function(pixels_function, image_size):
    """`pixels_function` (a Keras model, or pixels -> probabilities) as a concrete function taking
    float32 [None, *image_size, 3], with its weights folded in as constants."""
    import tensorflow as tf

    # Private API, on purpose: no public TensorFlow function folds a concrete function's variables
    # into constants, and `TFLiteConverter.from_concrete_functions` without them needs a trackable
    # object (the deprecated path that re-saves the model per variant). tests/test_private_apis.py
    # fails loudly if it moves.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = [tf.TensorSpec([None, *image_size, 3], tf.float32, name="pixels")]
    fn = tf.function(pixels_function, input_signature=spec)
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def convert(frozen, variant: str, representative: np.ndarray | None = None, int8_io: str = "uint8") -> bytes:
    """One TFLite flatbuffer. `representative` (float32 0-255 images) is needed for int8."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io == "uint8":
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
    elif variant != "float32":
        raise ValueError(f"unknown TFLite variant {variant!r}")
    return converter.convert()


class TFLiteRunner:
    """Scores preprocessed images with a .tflite model, quantizing input and output as it declares."""

    def __init__(self, path: str, num_threads: int | None = None):
        import tensorflow as tf

        content = model_bytes(path, "TFLite")
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (LiteRT is not installed)
            warnings.simplefilter("ignore", UserWarning)
            self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.image_size = tuple(int(d) for d in self.input["shape"][1:3])
        self.io = {"input": np.dtype(self.input["dtype"]).name, "output": np.dtype(self.output["dtype"]).name}
        self._batch = None

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.image_size, 3])
            self.interpreter.allocate_tensors()
            self._batch = batch

    def predict_pixels(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 0-255 [n, h, w, 3] -> float32 probabilities [n, classes]."""
        outputs = []
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start : start + batch_size]
            self._resize(len(chunk))
            self.interpreter.set_tensor(self.input["index"], self._quantize(chunk))
            self.interpreter.invoke()
            outputs.append(self._dequantize(self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(outputs, axis=0)

    def predict_encoded(self, images: list, batch_size: int = 32) -> np.ndarray:
        from components.common.image_ops import preprocess

        return self.predict_pixels(preprocess(images, self.image_size), batch_size)

    def _quantize(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return pixels.astype(np.float32)
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return values
        scale, zero_point = self.output["quantization"]
        return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _writer(variant: str):
    def write(source, path: str) -> None:
        import tensorflow as tf

        from components.common.formats import tflite_metadata

        if "tflite_frozen" not in source.cache:  # one trace and freeze for every variant
            source.cache["tflite_frozen"] = frozen_function(source.pixels_function, source.image_size)
        flatbuffer = convert(source.cache["tflite_frozen"], variant, source.representative, source.int8_io)
        flatbuffer = tflite_metadata.populate(
            flatbuffer,
            source.labels,
            name=source.name,
            description=f"{source.description}; {variant} TFLite variant",
            version=source.version,
        )
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(flatbuffer)

    return write


FORMATS = tuple(
    Format(
        f"tflite_{variant}",
        f"TFLite {variant.replace('_', '-')}",
        f"tflite/model_{variant}.tflite",
        _writer(variant),
        TFLiteRunner,
        parity=variant == "float32",
    )
    for variant in VARIANTS
)
