"""Issue 13 on the real sign-language folder with the shared backbone: calibration, abstention.

The default-trained model (shared with tests/test_train_transfer.py) is exported with abstention
at 95% val precision and evaluated on the whole test split (204 photos):
- ECE on the test split is lower after the val-fitted temperature than before;
- the calibrated probabilities are the same in Keras (the trained model.keras with softmax(logits / T)
  computed here), the SavedModel and TFLite float32;
- the accepted answers are more accurate than all answers; generated textures (no hand in them)
  are answered "unknown" far more often than test photos, by the SavedModel signature and by
  `pipeline.predict` alike;
- the run report shows the reliability diagram.
"""

import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import special

import components.common.layers  # noqa: F401  (custom layers, before loading model.keras)
import components.evaluate
import components.export
from components.common.formats.saved_model import SavedModelRunner
from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from components.evaluate.config import EvaluateConfig
from pipeline import predict
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import sample_split
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def trusted(ingested_sign_digits, shared_weights_dir, tmp_path_factory):
    _, train_dir = export_models.default_sign_digits_training(
        tmp_path_factory, ingested_sign_digits, shared_weights_dir
    )
    root = tmp_path_factory.mktemp("trust")
    config = components.export.ExportConfig(formats=("tflite_float32",), abstain_precision=0.95)
    export = components.export.run(config, str(train_dir), str(ingested_sign_digits), str(root / "export"))
    evaluated = components.evaluate.run(
        EvaluateConfig(), export.output_dir, str(ingested_sign_digits), None, str(root / "evaluate")
    )
    metrics = json.loads((root / "evaluate" / "metrics.json").read_text())
    return {
        "train": str(train_dir),
        "export": export.output_dir,
        "evaluate": evaluated.output_dir,
        "metrics": metrics,
        "ingest": str(ingested_sign_digits),
        "root": root,
    }


def test_calibration_lowers_the_test_split_ece(trusted):
    calibration = trusted["metrics"]["calibration"]
    print(
        f"\ntest split ({trusted['metrics']['examples']} photos): T {calibration['temperature']}, "
        f"ECE {calibration['ece_before']} -> {calibration['ece_after']}, "
        f"NLL {calibration['nll_before']} -> {calibration['nll_after']}"
    )
    assert calibration["ece_after"] < calibration["ece_before"]
    assert calibration["nll_after"] <= calibration["nll_before"]
    info = ExportedModel(trusted["export"]).info()
    assert info["calibration"]["temperature"] == calibration["temperature"]
    assert sum(b["count"] for b in calibration["reliability_before"]) == trusted["metrics"]["examples"]


def test_calibrated_probabilities_are_equal_in_keras_saved_model_and_tflite(trusted):
    _, images, _ = sample_split(Examples(trusted["ingest"]), "test", 40, 10)
    pixels = preprocess(images, (96, 96))
    trained = keras.models.load_model(os.path.join(trusted["train"], "model.keras"), compile=False)
    to_logits = keras.Model(trained.inputs, trained.get_layer("head_dense").output)
    logits = to_logits.predict(pixels, verbose=0)
    info = ExportedModel(trusted["export"]).info()
    temperature = info["calibration"]["temperature"]
    keras_calibrated = special.softmax(logits.astype(np.float64) / temperature, axis=1)
    assert info["tta"] == "flip", "the default training flips, so export.tta=auto averages with the mirror"
    mirrored = to_logits.predict(pixels[:, :, ::-1], verbose=0)
    keras_calibrated = (keras_calibrated + special.softmax(mirrored.astype(np.float64) / temperature, axis=1)) / 2
    saved_model = SavedModelRunner(ExportedModel(trusted["export"]).saved_model_dir()).predict_encoded(images)
    tflite = TFLiteRunner(ExportedModel(trusted["export"]).formats()["tflite_float32"]).predict_pixels(pixels)
    np.testing.assert_allclose(saved_model, keras_calibrated, atol=1e-4)
    np.testing.assert_allclose(tflite, keras_calibrated, atol=1e-4)
    assert not np.allclose(saved_model, special.softmax(logits, axis=1), atol=1e-3)  # T really is applied


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _textures() -> dict:
    """40 generated images with no hand in them: noise, checkerboards, stripes and flat frames, 10 of each."""
    rng = np.random.default_rng(7)
    x, y = np.meshgrid(np.arange(120), np.arange(120))
    grey = lambda a: np.repeat(a[..., None], 3, axis=2)  # noqa: E731
    found = {}
    for i in range(10):
        found[f"noise_{i}"] = _png(rng.integers(0, 256, (120, 120, 3)))
        found[f"checkerboard_{i}"] = _png(grey(((x // (6 + 3 * i) + y // (6 + 3 * i)) % 2) * 255))
        found[f"stripes_{i}"] = _png(grey((np.sin(y / (2 + i)) + 1) * 127))
        found[f"flat_{i}"] = _png(np.full((120, 120, 3), 20 + 22 * i))
    return found


def test_abstention_answers_textures_unknown_and_accepted_answers_are_more_accurate(trusted, tmp_path, capsys):
    """Textures are answered "unknown" far more often than test photos: a rate, not every texture.

    Issue 22 measured why a rate: over three default trainings of this folder (two seeds, and one with
    16 moved labels) the 40 textures below were answered unknown at 53%, 82% and 72% (flat frames
    40-100%), test photos at 0-2%; the shared backbone (six CIFAR classes) puts some textures as close
    to the hands as hands are to each other, so which textures pass depends on how training fell
    on the CPU. A CI run had a flat grey frame answered "3" when the test asked for all four.
    """
    metrics = trusted["metrics"]
    chosen = metrics["abstention"]["selective"]
    accuracy = metrics["metrics"]["candidate"]["overall"]["accuracy"]
    print(
        f"\nabstention at val precision 0.95: threshold {metrics['abstention']['threshold']:.4f}, test coverage "
        f"{chosen['coverage']:.3f} ({chosen['accepted']}/{chosen['examples']}), accuracy of the accepted "
        f"{chosen['accuracy']:.3f} against {accuracy:.3f} on all"
    )
    assert 0.3 < chosen["coverage"] < 1 and chosen["accuracy"] > accuracy

    textures = _textures()
    _, answers = SavedModelRunner(ExportedModel(trusted["export"]).saved_model_dir()).answer_encoded(
        list(textures.values())
    )
    unknown = np.mean([a == "unknown" for a in answers])
    print(f"textures answered unknown: {unknown:.2f}; test photos: {1 - chosen['coverage']:.2f}")
    assert unknown >= 0.4 and unknown >= (1 - chosen["coverage"]) + 0.2, dict(zip(textures, answers))
    for name, data in textures.items():
        (tmp_path / f"{name}.png").write_bytes(data)
    capsys.readouterr()  # what this test printed so far
    assert predict.main([trusted["export"], str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {os.path.splitext(os.path.basename(r["path"]))[0]: r["label"] for r in rows}
    assert by_name == dict(zip(textures, answers)), "pipeline.predict answers as the SavedModel does"
    assert all(r["labels"][0] in ExportedModel(trusted["export"]).labels() for r in rows)  # top-k still there


def test_the_report_shows_the_reliability_diagram(trusted):
    from pipeline.report import Report

    run_dir = trusted["root"] / "runs" / "r1"
    run_dir.mkdir(parents=True)
    report = Report(None, "r1", None, {"evaluate": trusted["evaluate"], "export": trusted["export"]}, str(run_dir))
    report.trust()
    ((key, title, body),) = report.sections
    assert key == "trust" and 'alt="reliability diagram"' in body and 'alt="accuracy against coverage"' in body
    assert "before calibration" in body and "Abstention" in body
    assert tf.io.gfile.exists(str(trusted["root"] / "runs" / ".cache"))
