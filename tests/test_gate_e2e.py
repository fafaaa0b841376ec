"""The gate end to end through the components' entries: train artifact -> export -> evaluate -> push.

Six synthetic classes so that a model's quality can be set by its training: untrained (chance,
about 0.17), 2 epochs (about 0.7) and 15 epochs (about 1.0) on 36 test images.
"""

import json
import os

import pytest

import components.evaluate
import components.export
import components.push
from schemas.artifacts import ServingModel
from tests import export_models
from tests.ingest_format import write_synthetic_ingest_dir

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    return write_synthetic_ingest_dir(
        tmp_path_factory.mktemp("gate") / "ingest",
        labels=list("abcdef"),
        per_split={"train": 8, "val": 4, "test": 6},
        tfds_metadata=False,
    )


def _run(root, name, ingest, epochs, serving, config):
    """One pipeline pass through the components: (evaluate result, push result)."""
    train = export_models.train_tiny(root / f"train_{name}", ingest, epochs)
    export = components.export.run(
        components.export.ExportConfig(formats=("tflite_float32",)), train, ingest, str(root / f"export_{name}")
    ).output_dir
    latest = ServingModel(serving, "classifier").latest()
    evaluation = components.evaluate.run(
        config,
        export,
        ingest,
        latest.uri if latest else None,
        str(root / f"evaluate_{name}"),
        cache_dir=str(root / "cache"),
    )
    return evaluation, components.push.run(components.push.PushConfig(), export, evaluation.output_dir, serving)


def _versions(serving):
    model_dir = os.path.join(serving, "classifier")
    return sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []


def _blessing(evaluation):
    return json.load(open(os.path.join(evaluation.output_dir, "blessing.json")))


def test_model_below_accuracy_threshold_is_not_pushed(tmp_path, ingest):
    serving = str(tmp_path / "serving")
    evaluation, outcome = _run(
        tmp_path, "untrained", ingest, 0, serving, components.evaluate.EvaluateConfig(min_accuracy=0.5)
    )
    assert not outcome.pushed and not evaluation.ok
    assert _versions(serving) == []
    assert os.path.exists(os.path.join(evaluation.output_dir, "NOT_BLESSED"))
    failed = [c for c in _blessing(evaluation)["checks"] if not c["passed"]]
    assert [(c["name"], c["metric"], c["slice"]) for c in failed] == [("min_accuracy", "accuracy", "overall")]
    assert failed[0]["value"] < 0.5 and "below the required 0.5" in failed[0]["reason"]
    assert failed[0]["reason"] in outcome.reason


def test_worse_model_is_not_blessed_against_the_baseline_and_better_one_pushes_v2(tmp_path, ingest):
    serving = str(tmp_path / "serving")
    config = components.evaluate.EvaluateConfig(min_accuracy=0.1)  # only the baseline comparison can fail

    first, pushed = _run(tmp_path, "v1", ingest, 2, serving, config)
    assert first.blessed and pushed.version == 1 and _versions(serving) == ["1"]
    assert not [c for c in first.checks if c.name == "max_accuracy_drop_vs_baseline"]  # first run: no baseline

    worse, refused = _run(tmp_path, "worse", ingest, 0, serving, config)
    assert not refused.pushed and _versions(serving) == ["1"]
    blessing = _blessing(worse)
    assert blessing["baseline"] == os.path.join(serving, "classifier", "1")
    failed = [c for c in blessing["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["max_accuracy_drop_vs_baseline"]
    assert failed[0]["value"] < 0 and "below baseline" in failed[0]["reason"]

    better, pushed = _run(tmp_path, "v2", ingest, 15, serving, config)
    assert better.blessed and pushed.version == 2 and _versions(serving) == ["1", "2"]
    change = next(c for c in better.checks if c.name == "max_accuracy_drop_vs_baseline")
    assert change.passed and change.value > 0

    # Version 1 scored the same 36 test images for the "worse" run: the "v2" run reused its scores.
    reused = [_metrics(run)["baseline_scores_reused"] for run in (worse, better)]
    assert reused == [0, 36]
    assert worse.metrics["baseline"] == better.metrics["baseline"]


def _metrics(evaluation):
    return json.load(open(os.path.join(evaluation.output_dir, "metrics.json")))
