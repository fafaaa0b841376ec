"""What an export format is, and what every format is written from.

A format says where its file lives in an export directory, how it is written from the trained
model (`write(source, path)`), and how it is opened to score images (`open(path, num_threads)`,
a runner with `image_size`, `io`, `predict_pixels` and `predict_encoded`). The export writes the
formats its config names, the evaluator scores and gates each of them against the SavedModel, the
push copies them, and the report, the model card and the CLIs list them: all by iterating the
registry (components/common/formats/__init__.py), so a format is one module and one line there.

Importing a format module must not load TensorFlow: the orchestrator validates `export.formats`
against the registry on a cached rerun, which loads no framework (tests/test_orchestration.py).
Heavy libraries are imported inside `write` and `open`.
"""

import dataclasses
import os
from typing import Callable


@dataclasses.dataclass
class Source:
    """The trained model as the export prepared it, and the facts a format may embed.

    model: the float32 Keras model (temperature folded in).
    pixels_function: float32 pixels 0-255 [batch, h, w, 3] -> probabilities, test-time
      augmentation included: what every pixels-in format computes.
    representative: float32 train-split pixels for post-training quantization.
    properties: JSON-able facts a format with key-value metadata carries (labels, image_size,
      input, output, calibration, abstention, version).
    description, name, version: human-readable metadata.
    write_saved_model: writes the SavedModel with the export's serving signatures to a path
      (the signatures carry the export's calibration, abstention and decoding budget).
    int8_io: "uint8" or "float32", the full-integer TFLite model's input and output type.
    cache: what several formats derive once from the model (the frozen function of the TFLite
      variants).
    """

    model: object
    pixels_function: Callable
    labels: list
    image_size: tuple
    representative: object
    properties: dict
    name: str
    description: str
    version: str
    write_saved_model: Callable[[str], None]
    int8_io: str = "uint8"
    cache: dict = dataclasses.field(default_factory=dict)

    def pixels_spec(self):
        """The input signature of the pixels-in formats: float32 [None, h, w, 3] named `pixels`."""
        import tensorflow as tf

        return [tf.TensorSpec([None, *self.image_size, 3], tf.float32, name="pixels")]


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format.

    name: its key everywhere (export.formats, metrics.json, the gate's checks, --model-format).
    title: how the report and the model card name it.
    path: where it lives, relative to the export directory; a pushed version keeps the same
      relative path under assets.extra/ (the reference format is the version directory itself).
    write: (Source, absolute path) -> None.
    open: (absolute path, num_threads or None) -> a runner.
    parity: a float format that must match Keras within export.parity_tolerance on the parity
      images (quantized formats are judged by the gate's accuracy drop instead).
    reference: the SavedModel: the candidate the gate scores the others against.
    """

    name: str
    title: str
    path: str
    write: Callable
    open: Callable
    parity: bool = False
    reference: bool = False


def model_bytes(path: str, what: str) -> bytes:
    """The content of a model file on any TensorFlow filesystem; UsageError naming `what` when it is missing."""
    import tensorflow as tf

    from components.common.errors import UsageError

    if not tf.io.gfile.exists(path):
        raise UsageError(f"no {what} model at {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def size_of(path: str) -> int:
    """Bytes of a file, or of every file under a directory (a SavedModel)."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(path):
        return tf.io.gfile.stat(path).length
    return sum(
        tf.io.gfile.stat(os.path.join(root, name)).length for root, _, files in tf.io.gfile.walk(path) for name in files
    )
