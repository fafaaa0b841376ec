"""The recipe search (components/train/tune.py): its space, its budget, its resume, and that the test
split is never opened. Trials train a random MobileNetV2 at 32 px on a synthetic folder: the tests
check what the search does with its time and its splits, never which recipe wins."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from components.common.errors import UsageError
from components.train.config import StageConfig, TrainConfig
from components.train.tune import BEST_RECIPE, TRIALS, _Fixed, _recipe, _Space, recipe_config, selection_noise
from components.train.tune_config import TuneConfig, TuneSpace

PROJECT = pathlib.Path(__file__).resolve().parents[1]
STAGES = (
    StageConfig("head", epochs=3, learning_rate=1e-2),
    StageConfig("finetune", epochs=2, learning_rate=1e-3, unfreeze="block_13", augment=True),
)


def _base(weights="w.weights.h5", **changes) -> TrainConfig:
    fields = dict(backbone="mobilenet_v2", alpha=0.35, image_size=32, batch_size=8, weights=weights, stages=STAGES)
    return TrainConfig(**{**fields, **changes})


def test_the_first_trials_values_reproduce_the_train_config():
    space = _Space(TuneConfig(enabled=True), _base(), blocks=["block_13", "block_4", "block_8"])
    defaults = space.defaults()
    assert defaults["finetune_from.finetune"] == "block_13" and defaults["learning_rate_factor.head"] == 1.0
    assert _recipe(space.suggest(_Fixed(defaults))) == _recipe(_base())
    assert recipe_config(_base(), _recipe(_base())) == _base()


def test_a_chosen_recipe_round_trips_through_best_recipe_yaml():
    space = _Space(TuneConfig(enabled=True), _base(), blocks=["block_13", "block_8"])
    chosen = space.defaults() | {
        "learning_rate_factor.finetune": 0.5,
        "epochs.head": 7,
        "finetune_from.finetune": "block_8",
        "dropout": 0.4,
        "mixup": 0.2,
    }
    candidate = space.suggest(_Fixed(chosen))
    assert candidate.effective_stages()[1].learning_rate == pytest.approx(5e-4)
    assert candidate.effective_stages()[0].epochs == 7 and candidate.effective_stages()[1].unfreeze == "block_8"
    written = yaml.safe_load(yaml.safe_dump({"train": _recipe(candidate)}))["train"]
    applied = recipe_config(_base(), written)
    applied.validate()
    assert applied == candidate


def test_a_narrowed_space_leaves_the_rest_alone():
    config = TuneConfig(enabled=True, space=TuneSpace(dropout=(), label_smoothing=(), mixup=(), cutmix=()))
    defaults = _Space(config, _base(), blocks=[]).defaults()
    assert not {"dropout", "label_smoothing", "mixup", "cutmix"} & set(defaults)
    assert "finetune_from.finetune" not in defaults  # no blocks: the start block is not searched
    # a recipe without an augmented stage searches no augmentation
    head_only = _base(stages=STAGES[:1])
    assert not {"randaugment_ops", "mixup", "cutmix"} & set(_Space(TuneConfig(), head_only, blocks=[]).defaults())


@pytest.mark.parametrize(
    "config, message",
    [
        (TuneConfig(budget_seconds=1), "tune.budget_seconds=1"),
        (TuneConfig(max_trials=0), "tune.max_trials=0"),
        (TuneConfig(space=TuneSpace(dropout=(0.5, 0.1))), "tune.space.dropout=[0.5, 0.1]: needs low <= high"),
        (TuneConfig(space=TuneSpace(head_epochs=(2.5, 9))), "whole numbers of epochs"),
        (TuneConfig(space=TuneSpace(randaugment_ops=(0, 7))), "tune.space.randaugment_ops"),
        (TuneConfig(space=TuneSpace(learning_rate_factor=(1,))), "a range is [low, high]"),
    ],
)
def test_a_bad_search_config_is_a_usage_error_naming_the_key(config, message):
    with pytest.raises(UsageError) as e:
        config.validate()
    assert message in str(e.value)


def test_selection_noise_is_the_expected_best_of_k_equal_trials():
    noise = selection_noise(0.9, 10, 100)
    assert noise["standard_error"] == pytest.approx(0.03)
    assert noise["expected_gain_from_noise"] == pytest.approx(0.03 * 1.54, abs=0.002)  # Blom, k = 10
    assert selection_noise(0.9, 1, 100)["expected_gain_from_noise"] == 0.0


def test_tuning_off_publishes_a_recipe_that_changes_nothing_without_loading_tensorflow(tmp_path):
    script = (
        "import sys; from components.train.tune import run; from components.train.tune_config import TuneConfig;"
        "from components.train.config import TrainConfig;"
        f"r = run(TuneConfig(), TrainConfig(weights='none'), 'unused', {str(tmp_path / 'out')!r});"
        "print(r.summary()); print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == ["tuning off: the train config's recipe is used", "False"]
    assert yaml.safe_load((tmp_path / "out" / BEST_RECIPE).read_text()) == {"tuned": False, "train": {}}
    assert recipe_config(_base(), {}) == _base()


# --- real searches (slow tier) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A synthetic ingest (3 classes; 8 train, 4 val, 4 test images each) and a random backbone file."""
    from tests.ingest_format import write_synthetic_ingest_dir
    from tests.test_train_outputs import backbone_weights_file

    root = tmp_path_factory.mktemp("tune")
    ingest = write_synthetic_ingest_dir(root / "ingest", image_size=(32, 32))
    return {"ingest": str(ingest), "weights": backbone_weights_file(root / "w.weights.h5")}


def _child(spec: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        cwd=PROJECT,
        env=dict(os.environ, PYTHONPATH=str(PROJECT), TF_CPP_MIN_LOG_LEVEL="3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # a failure's traceback shows in the assertion's message
        text=True,
    )


CHILD = """
import json, sys
from components.train.config import StageConfig, TrainConfig
from components.train.tune import run
from components.train.tune_config import TuneConfig
spec = json.loads(sys.argv[1])
stages = tuple(StageConfig(**s) for s in spec["stages"])
train = TrainConfig(backbone="mobilenet_v2", alpha=0.35, image_size=32, batch_size=8, weights=spec["weights"], stages=stages)
result = run(TuneConfig(enabled=True, **spec["tune"]), train, spec["ingest"], spec["output"], spec["work"])
print("RESULT " + json.dumps(result.properties()), flush=True)
"""


def _spec(data, tmp_path, **tune) -> dict:
    stages = [dict(s.__dict__) for s in STAGES]
    work, output = str(tmp_path / "work"), str(tmp_path / "out")
    return {
        "weights": data["weights"],
        "ingest": data["ingest"],
        "stages": stages,
        "tune": tune,
        "work": work,
        "output": output,
    }


@pytest.mark.slow
def test_a_search_holds_its_budget_and_never_opens_the_test_split(data, tmp_path):
    import shutil

    import tensorflow as tf

    ingest = tmp_path / "ingest"
    shutil.copytree(data["ingest"], ingest)
    test_files = [p for p in ingest.rglob("*test.tfrecord*")]
    assert test_files, "the synthetic ingest has a test split"
    for path in test_files:  # any read of the test split now fails
        path.write_bytes(b"not a TFRecord" * 100)
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset([str(p) for p in test_files]))
    budget = 90
    spec = _spec({**data, "ingest": str(ingest)}, tmp_path, budget_seconds=budget, max_trials=100)
    started = time.monotonic()
    out, _ = _child(spec).communicate(timeout=600)
    elapsed = time.monotonic() - started
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    # The child's wall time includes importing TensorFlow, before the search's clock starts.
    assert result["used_seconds"] <= 1.1 * budget, (result, out)
    assert elapsed < 1.1 * budget + 30, elapsed
    lines = [line for line in out.splitlines() if line.startswith("[tune] trial ")]
    assert len(lines) == result["trials"] >= 2, out
    with open(tmp_path / "out" / TRIALS) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == list(range(len(rows)))
    assert rows[0]["recipe"] == "default" and rows[0]["status"] == "complete", rows[0]
    assert {r["status"] for r in rows} <= {"complete", "pruned", "stopped: the budget ran out"}
    recipe = yaml.safe_load((tmp_path / "out" / BEST_RECIPE).read_text())
    assert recipe["tuned"] and recipe["trials"] == len(rows) and recipe["used_seconds"] == result["used_seconds"]
    best = max(float(r["val_accuracy"]) for r in rows if r["status"] == "complete")
    assert recipe["val_accuracy"]["best"] == pytest.approx(best, abs=1e-4)
    assert recipe["val_accuracy"]["default_recipe"] == pytest.approx(float(rows[0]["val_accuracy"]), abs=1e-4)
    assert recipe["selection_noise"]["val_images"] == 12
    recipe_config(_base(weights=data["weights"]), recipe["train"]).validate()
    assert not (tmp_path / "work").exists(), "the study's work state is removed once published"


@pytest.mark.slow
def test_a_killed_search_resumes_keeping_its_finished_trials(data, tmp_path):
    spec = _spec(data, tmp_path, budget_seconds=600, max_trials=2)
    first = _child(spec)
    seen = []
    deadline = time.monotonic() + 400
    for line in first.stdout:  # SIGKILL once trial 0 is recorded, while trial 1 trains
        seen.append(line)
        if line.startswith("[tune] trial 0:") or time.monotonic() > deadline:
            break
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert any(line.startswith("[tune] trial 0: complete") for line in seen), "".join(seen)
    out, _ = _child(spec).communicate(timeout=600)
    lines = [line for line in out.splitlines() if line.startswith("[tune] trial ")]
    resumed_trial_1 = "[tune] trial 1 was interrupted: it runs again" in out  # killed while trial 1 ran
    assert resumed_trial_1 or (lines and lines[0].startswith("[tune] trial 1:")), out  # or before it began
    assert not any(line.startswith("[tune] trial 0:") for line in lines), "trial 0 is not run again"
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    with open(tmp_path / "out" / TRIALS) as f:
        rows = list(csv.DictReader(f))
    finished = [r for r in rows if r["status"] in ("complete", "pruned")]
    assert len(finished) == 2 and finished[0]["trial"] == "0" and finished[0]["recipe"] == "default", rows
    assert result["trials"] == len(rows)


def test_the_train_step_trains_the_published_recipe(tmp_path):
    from pipeline import dag

    space = _Space(TuneConfig(enabled=True), _base(), blocks=["block_13", "block_8"])
    chosen = space.suggest(_Fixed(space.defaults() | {"dropout": 0.35, "finetune_from.finetune": "block_8"}))
    (tmp_path / BEST_RECIPE).write_text(yaml.safe_dump({"tuned": True, "train": _recipe(chosen)}))
    assert dag._tuned(_base(), str(tmp_path)) == chosen
    (tmp_path / BEST_RECIPE).write_text(yaml.safe_dump({"tuned": False, "train": {}}))
    assert dag._tuned(_base(), str(tmp_path)) == _base()


def test_the_report_shows_every_trial_and_the_gain_beside_what_noise_alone_gives(tmp_path):
    from pipeline.report import Report

    rows = [
        ("0", "default", "complete", "0.80", "30.0", "0.2"),
        ("1", "searched", "pruned", "0.55", "8.0", "0.4"),
        ("2", "searched", "complete", "0.90", "31.5", "0.1"),
        ("3", "searched", "stopped: the budget ran out", "", "2.0", "0.3"),
    ]
    (tmp_path / TRIALS).write_text(
        "trial,recipe,status,val_accuracy,seconds,dropout\n" + "".join(",".join(r) + "\n" for r in rows)
    )
    recipe = {
        "tuned": True,
        "chosen": {"trial": 2, "values": {"dropout": 0.1}},
        "train": {},
        "val_accuracy": {"best": 0.9, "default_recipe": 0.8, "top_trials": [0.9, 0.8]},
        "selection_noise": selection_noise(0.9, 2, 40),
        "budget_seconds": 80.0,
        "used_seconds": 72.0,
        "trials": 4,
        "completed": 2,
    }
    (tmp_path / BEST_RECIPE).write_text(yaml.safe_dump(recipe))
    report = Report(None, "run", None, {"tune": str(tmp_path)}, str(tmp_path))
    report.tuning()
    (key, title, body), line = report.sections[0], report.lines[0]
    assert (key, title) == ("tuning", "Tuning") and body.count("<tr>") == 1 + len(rows)
    assert "trial 2" in body and "0.900" in body and "0.800" in body and "<img" in body
    noise = recipe["selection_noise"]["expected_gain_from_noise"]
    assert line == f"tune: trial 2 of 4 chosen, val accuracy 0.900 against 0.800 (gain 0.100, noise alone ~{noise:.3f})"
    untuned = Report(None, "run", None, {"tune": str(tmp_path / "off")}, str(tmp_path))
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / BEST_RECIPE).write_text(yaml.safe_dump({"tuned": False, "train": {}}))
    untuned.tuning()
    assert untuned.sections == [] and untuned.lines == [], "tuning off: no section"


@pytest.mark.slow
def test_a_real_run_reuses_its_search_in_under_a_second(tmp_path):
    import re

    from pipeline_helpers import make_folder, pipeline_run

    folder = make_folder(tmp_path / "images", per_class=10)
    args = ["--data-dir", folder, "--pipeline-root", tmp_path / "root", "--image-size", "32", "--weights", "none"]
    args += ["--epochs", "1", "--batch-size", "8", "--tune", "--tune-budget", "20", "--stop-after", "tune"]
    first = pipeline_run(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[pipeline] tune: done in" in first.stdout and "[tune] trial 0:" in first.stdout, first.stdout
    again = pipeline_run(*args)
    assert again.returncode == 0 and "[pipeline] tune: unchanged, reusing" in again.stdout, again.stdout
    seconds = float(re.search(r"complete \(exit code 0\) in ([\d.]+) s", again.stdout).group(1))
    assert seconds < 1.0, again.stdout
    # New data, a new train config or new tune settings search again: tests/test_orchestration.py.


def test_an_interrupted_trial_is_queued_again_once(tmp_path, capsys):
    """A trial killed while running (even before its values were drawn) is failed and queued again with
    the same values; Optuna refuses changes to a finished trial, so the retry records which it repeats,
    and a second resume queues nothing more."""
    from optuna.trial import TrialState

    from components.train.tune import _study

    config = TuneConfig(enabled=True)
    study = _study(config, "print", str(tmp_path))
    study.enqueue_trial({"dropout": 0.3}, user_attrs={"recipe": "default"})
    drawn = study.ask()  # killed mid-training: RUNNING with its values
    drawn.suggest_float("dropout", 0.0, 0.5)
    study.ask()  # killed between being created and drawing a value: RUNNING, no values
    resumed = _study(config, "print", str(tmp_path))
    states = [t.state for t in resumed.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING, TrialState.WAITING], states
    retries = resumed.get_trials(deepcopy=False)[2:]
    assert [t.user_attrs["retry_of"] for t in retries] == [0, 1]
    assert retries[0].system_attrs["fixed_params"] == {"dropout": 0.3}  # drawn again as they were
    assert retries[0].user_attrs["recipe"] == "default"
    assert "trial 0 was interrupted: it runs again" in capsys.readouterr().out
    again = _study(config, "print", str(tmp_path))
    assert len(again.get_trials(deepcopy=False)) == 4, "a resumed study queues each interrupted trial once"
