"""Running an exported model on encoded images: the SavedModel's signatures or a TFLite file.

The evaluator, the exporter's parity check and the validate/predict CLIs (through
pipeline/opened_model.py, which finds a model by path or pushed name) all score images the way
serving does: encoded bytes in, the shared `decode_and_resize` preprocessing, probabilities
out. TFLite models take the preprocessed pixels (float32 0-255, or uint8/int8 through the
model's own input quantization), so quantized variants see exactly the float model's input.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from components.common import fileio
from components.common.errors import UsageError
from components.common.image_ops import decode_and_resize


def preprocess(images: list, image_size) -> np.ndarray:
    """Encoded bytes -> float32 [n, h, w, 3] in 0-255 through the shared serving preprocessing.

    Decoded by tf.data in parallel (an eager `tf.map_fn` over 5,000 images took 12 s, one core).
    """
    size = tuple(int(x) for x in image_size)
    if not len(images):
        return np.zeros((0, *size, 3), np.float32)
    dataset = (
        tf.data.Dataset.from_tensor_slices(tf.constant(images, tf.string))
        .map(lambda b: decode_and_resize(b, size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(256)
    )
    return np.concatenate([batch.numpy() for batch in dataset])


class SavedModelRunner:
    """Scores encoded images with a SavedModel's `serving_default` or serialized tf.Examples with
    `serve_tf_examples`, in batches."""

    def __init__(self, saved_model_dir: str, batch_size: int = 32):
        if not tf.io.gfile.exists(os.path.join(saved_model_dir, "saved_model.pb")):
            raise UsageError(f"no SavedModel at {saved_model_dir}: expected {saved_model_dir}/saved_model.pb")
        self.path = saved_model_dir
        self.model = tf.saved_model.load(fileio.glob_safe(self.path))
        self.batch_size = batch_size

    def _run(self, signature: str, key: str, inputs: list, names=("probabilities",)) -> tuple:
        """The signature's `names` outputs over all `inputs`, concatenated batch after batch."""
        fn = self.model.signatures[signature]
        batches = [
            fn(**{key: tf.constant(inputs[i : i + self.batch_size])}) for i in range(0, len(inputs), self.batch_size)
        ]
        return tuple(np.concatenate([b[name].numpy() for b in batches], axis=0) for name in names)

    def predict_encoded(self, images: list) -> np.ndarray:
        return self._run("serving_default", "images", images)[0]

    def answer_encoded(self, images: list) -> tuple:
        """(probabilities, answers): answers are the signature's `label` output (a class or the unknown label)."""
        probabilities, labels = self._run("serving_default", "images", images, ("probabilities", "label"))
        return probabilities, [label.decode() for label in labels]

    def predict_examples(self, serialized: list) -> np.ndarray:
        return self._run("serve_tf_examples", "examples", serialized)[0]

    def answer_examples(self, serialized: list) -> tuple:
        probabilities, labels = self._run("serve_tf_examples", "examples", serialized, ("probabilities", "label"))
        return probabilities, [label.decode() for label in labels]


class TFLiteRunner:
    """Scores preprocessed images with a .tflite model, quantizing input and output as it declares."""

    def __init__(self, path: str, num_threads: int | None = None):
        if not tf.io.gfile.exists(path):
            raise UsageError(f"no TFLite model at {path}")
        with tf.io.gfile.GFile(path, "rb") as f:
            content = f.read()
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (LiteRT is not installed)
            warnings.simplefilter("ignore", UserWarning)
            self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.image_size = tuple(int(d) for d in self.input["shape"][1:3])
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
