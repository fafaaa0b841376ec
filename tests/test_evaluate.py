"""Evaluate: TFMA metrics for candidate, baseline and TFLite variants; every check in blessing.json."""

import json
import os

import numpy as np
import pytest

import components.evaluate
from components.common.errors import UsageError
from components.evaluate import gate, tfma_metrics
from components.evaluate.config import EvaluateConfig
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The good tiny export judged against itself as the baseline (it must not be worse than itself)."""
    export = export_models.tiny_export(tmp_path_factory)
    out = str(tmp_path_factory.mktemp("evaluate") / "out")
    config = EvaluateConfig(min_accuracy=0.8, min_class_recall=0.5, min_macro_f1=0.5)
    return components.evaluate.run(config, export, export_models.tiny_ingest(tmp_path_factory), export, out)


def test_metrics_per_model_and_slice(evaluated):
    metrics = json.load(open(os.path.join(evaluated.output_dir, "metrics.json")))
    models = metrics["metrics"]
    assert set(models) == {
        "candidate",
        "baseline",
        "tflite_float32",
        "tflite_float16",
        "tflite_dynamic_range",
        "tflite_int8",
        "onnx",
    }
    overall = models["candidate"]["overall"]
    assert overall["example_count"] == 24 and metrics["examples"] == 24
    assert overall["accuracy"] >= 0.9 and overall["top_k_accuracy"] == 1.0
    for name in ("cat", "dog", "fish"):
        for metric in ("precision", "recall", "f1"):
            assert 0.0 <= overall[f"{metric}/{name}"] <= 1.0
        per_class = models["candidate"][f"label={name}"]
        assert per_class["example_count"] == 8
        assert per_class["accuracy"] == pytest.approx(overall[f"recall/{name}"], abs=1e-6)
    assert 0.0 < overall["macro_f1"] <= 1.0
    confusion = metrics["confusion_matrix"]["candidate"]
    assert [sum(row) for row in confusion] == [8, 8, 8]
    assert sum(confusion[i][i] for i in range(3)) / 24 == pytest.approx(overall["accuracy"], abs=1e-6)
    assert os.path.exists(os.path.join(evaluated.output_dir, "tfma", "eval_config.json"))


def test_per_class_metrics_count_the_top1_class_even_when_unconfident(tmp_path):
    """Precision/recall/F1 per class are one-vs-rest on the predicted (top-1) class, not on p > 0.5."""
    probabilities = np.array(
        [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4], [0.3, 0.3, 0.4], [0.4, 0.3, 0.3]],
        np.float32,
    )
    labels = np.array([0, 0, 1, 2, 2, 2])  # predicted: 0 1 1 2 2 0
    overall = tfma_metrics.compute({"candidate": probabilities}, labels, ["a", "b", "c"], 1, str(tmp_path))["metrics"][
        "candidate"
    ]["overall"]
    expected = {
        "precision/a": 1 / 2,
        "recall/a": 1 / 2,
        "precision/b": 1 / 2,
        "recall/b": 1.0,
        "precision/c": 1.0,
        "recall/c": 2 / 3,
        "f1/c": 0.8,
        "accuracy": 4 / 6,
    }
    for name, value in expected.items():
        assert overall[name] == pytest.approx(value, abs=1e-5), name
    assert overall["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3, abs=1e-5)


def test_blessing_lists_every_check_and_format_deltas(evaluated):
    assert evaluated.blessed
    assert os.path.exists(os.path.join(evaluated.output_dir, "BLESSED"))
    assert not os.path.exists(os.path.join(evaluated.output_dir, "NOT_BLESSED"))
    blessing = json.load(open(os.path.join(evaluated.output_dir, "blessing.json")))
    names = [c["name"] for c in blessing["checks"]]
    assert names.count("min_accuracy") == 1 and names.count("min_class_recall") == 3
    assert names.count("min_macro_f1") == 1 and names.count("max_accuracy_drop_vs_baseline") == 1
    derived = {c["model"]: c for c in blessing["checks"] if c["name"] == "max_format_accuracy_drop"}
    assert set(derived) == {"tflite_float32", "tflite_float16", "tflite_dynamic_range", "tflite_int8", "onnx"}
    assert set(blessing["format_accuracy_delta"]) == set(derived)
    for check in blessing["checks"]:  # every accuracy-type check knows its test-set size, interval and test
        assert set(check) == {
            "name",
            "model",
            "metric",
            "slice",
            "threshold",
            "value",
            "passed",
            "reason",
            "examples",
            "interval",
            "statistic",
        }
        assert check["passed"] and check["value"] is not None
        assert check["examples"] and ("p_value" in check["statistic"] or "share_below_threshold" in check["statistic"])
        low, high = check["interval"]
        assert low <= check["value"] <= high
    assert blessing["format_accuracy_delta"]["tflite_int8"] == derived["tflite_int8"]["value"]
    assert "BLESSED" in evaluated.summary()


def test_unloadable_baseline_blocks_the_gate(tmp_path, tmp_path_factory):
    broken = tmp_path / "baseline"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    (broken / "labels.txt").write_text("cat\ndog\nfish\n")
    export = export_models.tiny_export(tmp_path_factory)
    result = components.evaluate.run(
        EvaluateConfig(), export, export_models.tiny_ingest(tmp_path_factory), str(broken), str(tmp_path / "out")
    )
    assert not result.blessed
    assert os.path.exists(tmp_path / "out" / "NOT_BLESSED")
    blessing = json.load(open(tmp_path / "out" / "blessing.json"))
    failed = [c for c in blessing["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["baseline_loadable"]
    assert "could not be evaluated" in failed[0]["reason"] and "block_on_unloadable_baseline" in failed[0]["reason"]


def test_unloadable_baseline_can_be_waived_by_config():
    check = gate.unloadable_baseline_check(EvaluateConfig(block_on_unloadable_baseline=False), "OSError: gone")
    assert check.passed and "value thresholds alone" in check.reason


def test_tflite_variant_losing_accuracy_fails_with_a_reason():
    labels = np.arange(200) % 4
    right = np.eye(4, dtype=np.float32)[labels]
    candidate = right.copy()
    candidate[:20] = np.eye(4, dtype=np.float32)[(labels[:20] + 1) % 4]  # 0.90
    int8 = candidate.copy()
    int8[20:30] = np.eye(4, dtype=np.float32)[(labels[20:30] + 1) % 4]  # 10 more wrong: 0.85
    predictions = {"candidate": candidate, "tflite_int8": int8, "tflite_float16": candidate}
    checks = {
        c.model: c for c in gate.format_checks(EvaluateConfig(max_format_accuracy_drop=0.01), predictions, labels)
    }
    assert checks["tflite_float16"].passed
    assert not checks["tflite_int8"].passed and checks["tflite_int8"].value == pytest.approx(-0.05)
    assert "tflite_int8 accuracy is 0.0500 below candidate on the same 200 images" in checks["tflite_int8"].reason
    assert checks["tflite_int8"].statistic["model_worse"] == 10 and checks["tflite_int8"].statistic["p_value"] < 0.01


@pytest.mark.parametrize(
    "bad", [dict(min_accuracy=1.5), dict(max_format_accuracy_drop=-0.1), dict(top_k=0), dict(split="")]
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(UsageError, match="evaluate."):
        EvaluateConfig(**bad).validate()
