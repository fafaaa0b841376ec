"""A model named on the command line, opened to score encoded images: a SavedModel or export
directory, a model file of any export format (`.tflite`, `.onnx`), or NAME[/VERSION] of a pushed
model (pipeline.validate, pipeline.predict); `model_format` picks one of the formats an export or
pushed version holds.

Here rather than in components/common because it reads the artifact layout (schemas/artifacts.py),
which the common helpers do not import.
"""

import os

import numpy as np
import tensorflow as tf

from components.common import formats
from components.common.errors import DataError, UsageError
from components.common.formats.saved_model import SavedModelRunner
from components.common.normalisation import served_format
from components.ingest.config import IngestConfig
from components.ingest.decode import Decoded, decode_and_normalise
from schemas.artifacts import ServingModel, model_abstention, model_formats, model_labels, saved_model_in


def resolve_model(spec: str, serving_dir: str | None = None) -> str:
    """A model given as a path (SavedModel dir, export dir, model file) or as NAME[/VERSION] in `serving_dir`."""
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
        f"model {spec!r} not found: give a SavedModel or export directory, a model file (.tflite, .onnx), "
        "or NAME[/VERSION] together with --serving-dir"
    )


def _model_dir_of(path: str, fmt: formats.Format) -> str:
    """The export (or a pushed version's assets.extra/) a format's file sits in: its registered path's depth up."""
    for _ in fmt.path.split("/"):
        path = os.path.dirname(path)
    return path


class OpenedModel:
    """A model ready to score encoded images, whatever its form, with its class names."""

    def __init__(
        self,
        spec: str,
        serving_dir: str | None = None,
        num_threads: int | None = None,
        batch_size: int = 32,
        model_format: str | None = None,
    ):
        self.path = resolve_model(spec, serving_dir)
        self.batch_size = batch_size
        fmt = formats.for_file(self.path) if not tf.io.gfile.isdir(self.path) else None
        model_dir = self.path  # where labels.txt is (the export or pushed version, not its SavedModel)
        if model_format and fmt is None:
            fmt = formats.get(model_format)
            held = model_formats(self.path)
            if model_format not in held:
                raise UsageError(
                    f"{self.path} holds no {model_format} model; it holds: {', '.join(held) or 'no recorded formats'}"
                )
            self.path = held[model_format]
        if fmt is None or fmt.reference:
            self.kind = "saved_model"
            self.runner = SavedModelRunner(saved_model_in(self.path), batch_size)
        else:
            self.kind = fmt.name
            self.runner = fmt.open(self.path, num_threads)
            model_dir = _model_dir_of(self.path, fmt)
        self.labels = self._labels(model_dir)
        self.abstention = model_abstention(model_dir)

    @staticmethod
    def _labels(model_dir: str) -> list:
        try:
            return model_labels(model_dir)
        except DataError as e:  # naming the model is the user's part here: a usage error
            raise UsageError(str(e)) from None

    def predict_encoded(self, images: list) -> np.ndarray:
        images = [served_bytes(image) for image in images]
        if self.kind == "saved_model":
            return self.runner.predict_encoded(images)
        return self.runner.predict_encoded(images, self.batch_size)

    def answer_encoded(self, images: list) -> tuple:
        """(probabilities, answers): each answer is the top class or, where the model abstains, its unknown label.

        A SavedModel answers in its graph (the `label` output: confidence and distance checks); the
        pixels-in formats have no string output, so their exported confidence threshold is applied here.
        """
        if self.kind == "saved_model":
            return self.runner.answer_encoded([served_bytes(image) for image in images])
        probabilities = self.predict_encoded(images)
        threshold = self.abstention["threshold"] if self.abstention else 0.0
        return probabilities, [
            self.labels[int(np.argmax(p))] if p.max() >= threshold else self.abstention["unknown_label"]
            for p in probabilities
        ]


def served_bytes(data: bytes) -> bytes:
    """`data` itself when the model's decoder reads its format (normalisation.SERVED_FORMATS); else (TIFF)
    the ingest's normalised re-encoding, so the CLIs score a file as the ingest would have stored it.
    A file the ingest would reject is returned as it is: the model's decoder then names it undecodable."""
    if served_format(data):
        return data
    converted = decode_and_normalise(data, min_side=1, max_pixels=IngestConfig.max_pixels)  # the ingest's bomb guard
    return converted.data if isinstance(converted, Decoded) else data
