"""Running an exported model on encoded images: the SavedModel's signatures or a TFLite file.

The evaluator, the exporter's parity check and the validate/predict CLIs all score images the
way serving does: encoded bytes in, the shared `decode_and_resize` preprocessing, probabilities
out. TFLite models take the preprocessed pixels (float32 0-255, or uint8/int8 through the
model's own input quantization), so quantized variants see exactly the float model's input.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from components.common import fileio
from components.common.errors import DataError, UsageError
from components.common.image_ops import decode_and_resize
from schemas.artifacts import ExportedModel, ServingModel, model_abstention, model_labels


def find_saved_model(path: str) -> str:
    """`path` itself or its `saved_model/` child: an export dir and a serving version dir both work."""
    for candidate in (path, ExportedModel(path).saved_model_dir()):
        if tf.io.gfile.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise UsageError(f"no SavedModel at {path}: expected {path}/saved_model.pb or {path}/saved_model/saved_model.pb")


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

    def __init__(self, path: str, batch_size: int = 32):
        self.path = find_saved_model(path)
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


def resolve_model(spec: str, serving_dir: str | None = None) -> str:
    """A model given as a path (SavedModel dir, export dir, .tflite) or as NAME[/VERSION] in `serving_dir`."""
    if tf.io.gfile.exists(spec):
        return spec
    if serving_dir:
        name, _, version = spec.partition("/")
        served = ServingModel(serving_dir, name)
        if tf.io.gfile.isdir(served.uri):
            found = served.versions()
            if version and version.isdigit() and int(version) in found:
                return served.version(int(version)).uri
            if not version and found:
                return served.latest().uri
            raise UsageError(f"model {name!r} in {serving_dir} has versions {found}; {version or 'latest'} not found")
    raise UsageError(
        f"model {spec!r} not found: give a SavedModel or export directory, a .tflite file, "
        "or NAME[/VERSION] together with --serving-dir"
    )


class OpenedModel:
    """A model ready to score encoded images, whatever its form, with its class names."""

    def __init__(self, spec: str, serving_dir: str | None = None, num_threads: int | None = None, batch_size: int = 32):
        self.path = resolve_model(spec, serving_dir)
        self.batch_size = batch_size
        if self.path.endswith(".tflite"):
            self.kind = "tflite"
            self.runner = TFLiteRunner(self.path, num_threads)
            # model_<variant>.tflite lives in <export>/tflite/ or <version>/assets.extra/tflite/
            model_dir = os.path.dirname(os.path.dirname(self.path))
        else:
            self.kind = "saved_model"
            self.runner = SavedModelRunner(self.path, batch_size)
            model_dir = self.path
        self.labels = self._labels(model_dir)
        self.abstention = model_abstention(model_dir)

    @staticmethod
    def _labels(model_dir: str) -> list:
        try:
            return model_labels(model_dir)
        except DataError as e:  # naming the model is the user's part here: a usage error
            raise UsageError(str(e)) from None

    def predict_encoded(self, images: list) -> np.ndarray:
        if self.kind == "tflite":
            return self.runner.predict_encoded(images, self.batch_size)
        return self.runner.predict_encoded(images)

    def answer_encoded(self, images: list) -> tuple:
        """(probabilities, answers): each answer is the top class or, where the model abstains, its unknown label.

        A SavedModel answers in its graph (the `label` output: confidence and distance checks); a
        TFLite model has no string output, so its exported confidence threshold is applied here.
        """
        if self.kind == "saved_model":
            return self.runner.answer_encoded(images)
        probabilities = self.predict_encoded(images)
        threshold = self.abstention["threshold"] if self.abstention else 0.0
        return probabilities, [
            self.labels[int(np.argmax(p))] if p.max() >= threshold else self.abstention["unknown_label"]
            for p in probabilities
        ]
