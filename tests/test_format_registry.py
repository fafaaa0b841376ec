"""A format registered here, in the test module alone, is written, parity-checked, evaluated, gated,
pushed, carried in the model card and reported: nothing else in the tree names it.

The throwaway formats are a Keras v3 archive of the exported model (a real format: it must match
Keras within the parity tolerance) and a deliberately broken one (its probabilities are rolled by
one class) that the gate must refuse.
"""

import json
import os

import keras
import numpy as np
import pytest

import components.evaluate
import components.export
import components.push
from components.common import formats
from components.common.image_ops import preprocess
from components.evaluate.config import EvaluateConfig
from components.push.config import PushConfig
from pipeline.report import Report
from schemas.artifacts import ExportedModel, ServingModel
from tests import export_models

pytestmark = pytest.mark.slow  # a tiny training, an export and an evaluation: about a minute


class KerasArchiveRunner:
    io = {"input": "float32", "output": "float32"}

    def __init__(self, path: str, num_threads=None, rolled: bool = False):
        self.model = keras.saving.load_model(path, compile=False)
        self.image_size = tuple(self.model.input_shape[1:3])
        self.rolled = rolled

    def predict_pixels(self, pixels, batch_size: int = 32):
        out = np.concatenate(
            [self.model(pixels[i : i + batch_size]).numpy() for i in range(0, len(pixels), batch_size)]
        )
        return np.roll(out, 1, axis=1) if self.rolled else out

    def predict_encoded(self, images, batch_size: int = 32):
        return self.predict_pixels(preprocess(images, self.image_size), batch_size)


def _write_archive(source, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source.model.save(path)


KERAS_ARCHIVE = formats.Format(
    "keras_archive", "Keras v3 archive", "keras/model.keras", _write_archive, KerasArchiveRunner, parity=True
)
ROLLED = formats.Format(
    "rolled",
    "Rolled (broken on purpose)",
    "rolled/model.keras",
    _write_archive,
    lambda path, threads: KerasArchiveRunner(path, threads, rolled=True),
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Export (SavedModel + the two throwaway formats), evaluate, push: the registry patched for the module."""
    patch = pytest.MonkeyPatch()
    patch.setattr(formats, "FORMATS", dict(formats.FORMATS))
    formats.register(KERAS_ARCHIVE)
    formats.register(ROLLED)
    try:
        root = tmp_path_factory.mktemp("registry")
        ingest = export_models.tiny_ingest(tmp_path_factory)
        train = export_models.train_tiny(root / "train", ingest, 15)
        export = components.export.run(
            components.export.ExportConfig(formats=("keras_archive", "rolled"), representative_examples=8),
            train,
            ingest,
            str(root / "export"),
        )
        evaluated = components.evaluate.run(
            EvaluateConfig(min_accuracy=0.8), export.output_dir, ingest, None, str(root / "evaluate")
        )
        # the broken format is refused by the gate; the push is forced to show what a push copies
        pushed = components.push.run(
            PushConfig(model_name="m"), export.output_dir, evaluated.output_dir, str(root / "serving"), force=True
        )
        report = Report(None, "run", None, {"export": export.output_dir, "evaluate": evaluated.output_dir}, str(root))
        report.formats()
        yield export, evaluated, pushed, report
    finally:
        patch.undo()


def test_written_and_parity_checked(chain):
    export, *_ = chain
    exported = ExportedModel(export.output_dir)
    assert list(exported.formats()) == ["saved_model", "keras_archive", "rolled"]
    assert os.path.isfile(exported.formats()["keras_archive"])
    assert exported.format_entries()["keras_archive"]["bytes"] == os.path.getsize(exported.formats()["keras_archive"])
    parity = exported.parity()
    assert set(parity["max_abs_diff"]) == {"saved_model", "keras_archive"}  # `rolled` does not claim parity
    assert parity["max_abs_diff"]["keras_archive"] <= 1e-4


def test_evaluated_and_gated(chain):
    _, evaluated, *_ = chain
    checks = {c.model: c for c in evaluated.checks if c.name == "max_format_accuracy_drop"}
    assert set(checks) == {"keras_archive", "rolled"}
    assert checks["keras_archive"].passed and checks["keras_archive"].value == 0.0
    assert not checks["rolled"].passed and not evaluated.blessed
    metrics = json.load(open(os.path.join(evaluated.output_dir, "metrics.json")))["metrics"]
    assert metrics["keras_archive"]["overall"]["accuracy"] == metrics["candidate"]["overall"]["accuracy"]


def test_pushed_with_its_path_and_in_the_model_card(chain):
    export, _, pushed, _ = chain
    version = ServingModel(os.path.dirname(os.path.dirname(pushed.output_dir)), "m").latest()
    copied = version.formats()
    assert copied["keras_archive"] == os.path.join(pushed.output_dir, "assets.extra", "keras", "model.keras")
    with (
        open(copied["keras_archive"], "rb") as a,
        open(ExportedModel(export.output_dir).formats()["keras_archive"], "rb") as b,
    ):
        assert a.read() == b.read()
    card = json.load(open(os.path.join(pushed.output_dir, "assets.extra", "model_card.json")))
    assert [f["name"] for f in card["formats"]] == ["saved_model", "keras_archive", "rolled"]
    markdown = open(os.path.join(pushed.output_dir, "assets.extra", "model_card.md")).read()
    assert "| Keras v3 archive | `assets.extra/keras/model.keras` |" in markdown


def test_reported(chain):
    *_, report = chain
    (section,) = [body for key, _, body in report.sections if key == "formats"]
    assert "Keras v3 archive" in section and "Rolled (broken on purpose)" in section
    assert "keras/model.keras" in section
