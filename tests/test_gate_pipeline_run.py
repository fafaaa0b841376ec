"""Issue 4, must-show 2, end to end through `python -m pipeline.run` (real components, no stand-ins).

One pipeline root, one serving directory, three runs on the same folder:

1. a mediocre model (few epochs) is pushed as version 1 (exit 0);
2. a deliberately worse one (the same recipe with a sabotaged learning rate, so it stays at its
   random initialisation) is not blessed against the baseline, version 1: exit 4, `blessing.json`
   names the failed baseline check, and version 1 stays the only version;
3. a better one (more epochs than run 1) passes the baseline comparison and is pushed as version 2.

`evaluate.min_accuracy` is 0, so the baseline comparison is the only check that can fail; the
TFLite variants are restricted to float32 (its parity with the SavedModel is checked at export),
so the variants' accuracy-drop check cannot flip on a small test split. From scratch at 32 px on
this folder (three colour classes, 27 test images), measured on 2 CPU cores: the sabotaged model
stays near chance (about 0.33), 2 epochs are mediocre (about 0.5-0.7) and 10 epochs reach 1.0.
Runs 2 and 3 change only the train config: ingest and validate are reused from run 1; train,
export, evaluate and push rerun.
"""
import json
import re

import pytest

from pipeline_helpers import make_folder, pipeline_run, published

COMMON = ("--image-size", "32", "--weights", "none", "--batch-size", "8",
          "--splits", "train=0.5,val=0.2,test=0.3",
          "--set", "export.tflite_variants=[float32]", "--set", "export.representative_examples=8",
          "--set", "evaluate.min_accuracy=0.0")  # only the comparison with the baseline can fail


def _stage(epochs: int, learning_rate: float) -> str:
    warmup = 1 if epochs > 1 else 0  # learning rate written out: YAML 1.1 reads 2e-3 as a string
    return (f"train.stages=[{{name: scratch, epochs: {epochs}, learning_rate: {learning_rate:.10f}, unfreeze: all, "
            f"warmup_epochs: {warmup}, augment: false}}]")


MEDIOCRE = _stage(2, 0.01)
SABOTAGED = _stage(2, 1e-9)  # the same recipe, but the optimizer barely moves the random weights
BETTER = _stage(10, 0.01)


def _versions(serving):
    folder = serving / "classifier"
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def _run_id(proc) -> str:
    return re.search(r"\[pipeline\] run (\S+) in", proc.stdout).group(1)


def _blessing(root, run_id) -> dict:
    return json.loads((root / "evaluate" / run_id / "blessing.json").read_text())


def _accuracy(blessing, model="candidate") -> float:
    checks = {c["name"]: c for c in blessing["checks"] if c.get("model", "candidate") == model}
    return checks["min_accuracy"]["value"]


def test_worse_model_is_refused_against_v1_and_a_better_one_becomes_v2(tmp_path):
    folder = make_folder(tmp_path / "images", classes=3, per_class=30, size=32)
    root, serving = tmp_path / "root", tmp_path / "serving"
    args = ("--data-dir", folder, "--pipeline-root", root, "--serving-dir", serving, *COMMON)

    def run(stage):
        proc = pipeline_run(*args, "--set", stage, timeout=600)
        print(proc.stdout[-2500:])  # shown by pytest on failure: the accuracies each run printed
        return proc

    first = run(MEDIOCRE)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _versions(serving) == ["1"]
    first_blessing = _blessing(root, _run_id(first))
    assert first_blessing["blessed"] and first_blessing["baseline"] is None
    assert not [c for c in first_blessing["checks"] if "baseline" in c["name"]], "first run: nothing to compare with"
    first_accuracy = _accuracy(first_blessing)

    worse = run(SABOTAGED)
    assert worse.returncode == 4, worse.stdout[-3000:] + worse.stderr[-3000:]
    for component in ("ingest", "validate"):
        assert f"[pipeline] {component}: unchanged, reusing" in worse.stdout
    for component in ("train", "export", "evaluate", "push"):
        assert f"[pipeline] {component}: done in" in worse.stdout, component
    assert _versions(serving) == ["1"], "the refused model must not appear in serving"
    worse_id = _run_id(worse)
    blessing = _blessing(root, worse_id)
    assert not blessing["blessed"] and (root / "evaluate" / worse_id / "NOT_BLESSED").exists()
    assert blessing["baseline"] == str(serving / "classifier" / "1")
    failed = [c for c in blessing["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["max_accuracy_drop_vs_baseline"], blessing["checks"]
    assert failed[0]["value"] < 0 and "baseline" in failed[0]["reason"]
    assert failed[0]["reason"] in worse.stdout  # the verdict says why
    worse_accuracy = _accuracy(blessing)
    assert worse_accuracy < first_accuracy

    better = run(BETTER)
    assert better.returncode == 0, better.stdout[-3000:] + better.stderr[-3000:]
    assert "[pipeline] train: done in" in better.stdout
    assert _versions(serving) == ["1", "2"]
    better_blessing = _blessing(root, _run_id(better))
    assert better_blessing["blessed"] and better_blessing["baseline"] == str(serving / "classifier" / "1")
    change = next(c for c in better_blessing["checks"] if c["name"] == "max_accuracy_drop_vs_baseline")
    better_accuracy = _accuracy(better_blessing)
    assert change["passed"] and change["value"] > 0 and better_accuracy > first_accuracy
    push = json.loads((serving / "classifier" / "2" / "assets.extra" / "push.json").read_text())
    assert push["blessed"] and not push["forced"]
    assert push["evaluate_dir"] == str(root / "evaluate" / _run_id(better))

    print(f"test accuracy: run 1 {first_accuracy:.3f}, run 2 (sabotaged) {worse_accuracy:.3f}, "
          f"run 3 {better_accuracy:.3f}")
    assert len(published(root / "ingest")) == 1, "runs 2 and 3 reused run 1's ingest"
