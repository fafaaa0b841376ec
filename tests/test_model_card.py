"""The model card in every pushed version: built from the artifacts, limitations derived from the numbers."""

import json

import pytest
from pipeline_helpers import shared_first_run

import components.push
from components.push import model_card
from schemas.artifacts import ServingVersion
from tests import export_models

LABELS = ["cat", "dog", "fish"]
INFO = {
    "labels": LABELS,
    "num_classes": 3,
    "backbone": "mobilenet_v2",
    "image_size": [96, 96],
    "tta": "flip",
    "examples_per_split": {"train": 300, "val": 60, "test": 48},
    "calibration": {"temperature": 0.5},
    "abstention": None,
}
METRICS = {
    "split": "test",
    "examples": 48,
    "calibration": {"ece_after": 0.04, "nll_after": 0.3},
    "metrics": {
        "candidate": {
            "overall": {
                "accuracy": 0.875,
                "macro_f1": 0.86,
                "precision/cat": 0.9,
                "recall/cat": 0.95,
                "f1/cat": 0.92,
                "precision/dog": 0.9,
                "recall/dog": 0.70,
                "f1/dog": 0.79,
                "precision/fish": 0.85,
                "recall/fish": 0.97,
                "f1/fish": 0.9,
            },
            "label=cat": {"example_count": 16.0},
            "label=dog": {"example_count": 16.0},
            "label=fish": {"example_count": 16.0},
        }
    },
}  # keyed by class name, as the evaluator writes them
BLESSING = {
    "blessed": True,
    "checks": [
        {
            "name": "min_accuracy",
            "model": "candidate",
            "metric": "accuracy",
            "value": 0.875,
            "threshold": ">= 0.5",
            "passed": True,
            "interval": [0.753, 0.941],
        },
        {
            "name": "max_accuracy_drop_vs_baseline",
            "model": "candidate",
            "metric": "accuracy",
            "value": -0.1,
            "threshold": "no significant drop",
            "passed": False,
            "interval": None,
        },
    ],
}
PUSH = {
    "model_name": "classifier",
    "version": 3,
    "pushed_at": "2026-12-03T08:00:00+00:00",
    "export_dir": "/e",
    "evaluate_dir": "/v",
    "blessed": True,
    "forced": False,
}


def test_limitations_come_from_the_numbers():
    card = model_card.build(INFO, BLESSING, METRICS, PUSH)
    limits = card["considerations"]["limitations"]
    assert any("48 test images, 95% interval 0.753-0.941" in text and "2.1 points" in text for text in limits)
    weak = [text for text in limits if text.startswith("Class")]
    assert weak == ["Class 'dog' is weak: recall 0.700 against 0.875 overall (16 test images)."]
    assert any(text.startswith("No abstention") for text in limits)
    per_class = card["quantitative_analysis"]["per_class"]
    assert [r["label"] for r in per_class] == LABELS and per_class[1]["test_examples"] == 16
    assert card["quantitative_analysis"]["accuracy_interval"] == [0.753, 0.941]


def test_abstention_is_described_when_the_export_abstains():
    info = {**INFO, "abstention": {"unknown_label": "unknown", "threshold": 0.41, "target": {"precision": 0.95}}}
    limits = model_card.build(info, BLESSING, METRICS, PUSH)["considerations"]["limitations"]
    assert any("Answers 'unknown' below a top probability of 0.410" in text for text in limits)


def test_markdown_holds_the_class_table_the_gate_and_the_lineage():
    text = model_card.markdown(model_card.build(INFO, BLESSING, METRICS, PUSH))
    assert text.startswith("# Model card: classifier version 3")
    assert "| dog | 16 | 0.900 | 0.700 | 0.790 |" in text
    assert "max_accuracy_drop_vs_baseline (candidate): -0.1000 no significant drop: FAILED" in text
    assert "Export /e, evaluation /v, blessed True, forced False." in text


def test_a_forced_push_without_evaluation_still_gets_a_card(tmp_path_factory, tmp_path):
    export_dir = export_models.tiny_export(tmp_path_factory)
    result = components.push.run(components.push.PushConfig(), export_dir, None, str(tmp_path / "serving"), force=True)
    version = ServingVersion(result.output_dir)
    card = json.loads(open(version.path(ServingVersion.MODEL_CARD_JSON)).read())
    assert card["lineage"]["forced"] is True and card["quantitative_analysis"]["accuracy"] is None
    assert "accuracy -" in open(version.path(ServingVersion.MODEL_CARD)).read()


@pytest.mark.slow
def test_a_pipeline_run_pushes_a_card_matching_its_evaluation(tmp_path_factory):
    root, _folder, _args, _first = shared_first_run(tmp_path_factory)
    (version_dir,) = [p for p in (root / "serving" / "classifier").iterdir() if p.name.isdigit()]
    version = ServingVersion(str(version_dir))
    card = json.loads(open(version.path(ServingVersion.MODEL_CARD_JSON)).read())
    blessing = json.loads(open(version.path(ServingVersion.BLESSING)).read())
    accuracy = [c for c in blessing["checks"] if c["model"] == "candidate" and c["metric"] == "accuracy"][0]
    assert card["quantitative_analysis"]["accuracy_interval"] == accuracy["interval"]
    assert card["model_details"]["version"] == 1 and card["lineage"]["blessed"] is True
    per_class = card["quantitative_analysis"]["per_class"]
    metrics = json.loads(open(root.joinpath("evaluate").glob("*/metrics.json").__next__()).read())
    overall = metrics["metrics"]["candidate"]["overall"]
    assert [r["label"] for r in per_class] == ["class_0", "class_1", "class_2"]
    assert [r["recall"] for r in per_class] == [overall[f"recall/class_{i}"] for i in range(3)]
    assert sum(r["test_examples"] for r in per_class) == metrics["examples"]


def test_a_distilled_model_names_its_teacher():
    distilled = {
        **INFO,
        "distillation": {
            "teacher": "/root/train/abc/model.keras",
            "teacher_sha256": "0123456789abcdef" * 4,
            "temperature": 4.0,
            "alpha": 0.5,
        },
    }
    card = model_card.build(distilled, BLESSING, METRICS, PUSH)
    assert card["lineage"]["distilled_from"]["teacher"] == "/root/train/abc/model.keras"
    assert (
        "Distilled from the teacher /root/train/abc/model.keras (sha256 0123456789abcdef), temperature 4.0, alpha 0.5."
    ) in model_card.markdown(card)
    assert "Distilled" not in model_card.markdown(model_card.build(INFO, BLESSING, METRICS, PUSH))
