"""The gate scores the test split's original files as users send them, and fails on a decoding skew.

A folder of real photos, half of them stored rotated with the EXIF tag that makes them upright, is
ingested (the records are upright) and a fixed "left half brighter than right half?" classifier is
exported, whose answer a quarter turn changes. Exported with today's in-graph normalisation, the
files and the records agree and the check passes; exported with the EXIF orientation ignored (what
every TensorFlow decoder did before), the gate fails as serving skew, naming the rotated files.
"""

import json
import pathlib

import keras
import numpy as np
import pytest
from PIL import Image

import components.evaluate
import components.export
import components.ingest
from components.common import camera_decode
from components.evaluate.config import EvaluateConfig
from tests import export_models
from tests.camera_encodings import stored_rotated

SIGN_DIGITS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits"
pytestmark = [
    pytest.mark.slow,  # an ingest, two exports and two TFMA evaluations
    pytest.mark.skipif(not SIGN_DIGITS.is_dir(), reason=f"needs the real photos in {SIGN_DIGITS}"),
]
SIZE = 32


def _left_or_right() -> keras.Model:
    """Two classes: "left" when the image's left half is brighter than its right half, else "right"."""
    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(2, SIZE, padding="valid", use_bias=False, name="head_dense")
    x = keras.layers.Flatten(name="head_pool")(conv(inputs))
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(x))
    kernel = np.zeros((SIZE, SIZE, 3, 2), np.float32)
    kernel[:, : SIZE // 2, :, 0], kernel[:, SIZE // 2 :, :, 0] = 1e-3, -1e-3
    kernel[..., 1] = -kernel[..., 0]
    conv.set_weights([kernel])
    return model


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("skew")
    files = sorted(p for d in sorted(SIGN_DIGITS.iterdir()) if d.is_dir() for p in sorted(d.iterdir()))[::25][:60]
    for i, path in enumerate(files):
        folder = tmp / "photos" / ("left" if i % 2 else "right")
        folder.mkdir(parents=True, exist_ok=True)
        photo = Image.open(path).convert("RGB")
        data = stored_rotated(photo, 6, quality=92) if i % 4 < 2 else path.read_bytes()
        (folder / f"{i:03d}.jpg").write_bytes(data)
    ingest_dir = str(tmp / "ingest")
    components.ingest.run(
        components.ingest.IngestConfig(data_dir=str(tmp / "photos"), splits={"train": 0.5, "test": 0.5}), ingest_dir
    )
    train_dir = export_models.write_train_dir(tmp / "train", _left_or_right(), ["left", "right"], (SIZE, SIZE), "fixed")
    return tmp, ingest_dir, train_dir


def _gate(tmp, ingest_dir, train_dir, tag):
    export_dir = str(tmp / f"export_{tag}")
    config = components.export.ExportConfig(
        formats=("saved_model",), calibrate=False, abstain_far_from_training=False, tta="none", warmup_examples=0
    )
    components.export.run(config, train_dir, ingest_dir, export_dir)
    out = str(tmp / f"evaluate_{tag}")
    result = components.evaluate.run(EvaluateConfig(min_accuracy=0.0), export_dir, ingest_dir, None, out)
    return result, json.load(open(pathlib.Path(out) / "metrics.json"))["serving_skew"]


def test_files_and_records_agree_with_the_in_graph_normalisation(ingested):
    result, skew = _gate(*ingested, "now")
    check = next(c for c in result.checks if c.name == "max_serving_skew")
    assert check.passed and check.value == 0.0 and check.examples == skew["checked"] >= 20, (check, skew)


def test_a_decoder_that_ignores_exif_fails_the_gate_naming_the_files(ingested, monkeypatch):
    monkeypatch.setattr(camera_decode, "orient", lambda image, value: image)  # TensorFlow's decoders before
    result, skew = _gate(*ingested, "exif_ignored")
    check = next(c for c in result.checks if c.name == "max_serving_skew")
    assert not result.blessed and not check.passed and check.value > 0.02, check
    assert "training/serving skew" in check.reason and skew["differing"][0]["path"] in check.reason
    rotated = {pathlib.Path(d["path"]).name for d in skew["differing"]}
    assert all(int(name[:3]) % 4 < 2 for name in rotated), rotated  # only the EXIF-rotated photos differ
