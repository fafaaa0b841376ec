"""The gate end to end through `python -m pipeline.run` (real components, no stand-ins).

One pipeline root, one serving directory, three runs whose models differ in a way training
cannot undo, so the test checks the gate and not the optimizer (an earlier version built its
"worse" model with a tiny learning rate, and on another CPU the "mediocre" one scored lower):

0. the folder (three colour classes, 30 images each) is ingested once, which fixes every image's
   split; later ingests keep each image in its split by content (sha256);
1. version 1 is trained on a copy whose classes 1 and 2 have their TRAIN images swapped: it
   learns colour 1 -> class 2 and colour 2 -> class 1, so it gets only class 0's test images
   right (about 1/3 of them); it is pushed (exit 0: nothing to compare with, min_accuracy 0);
2. a worse model is trained on a copy whose train labels are rotated (class c -> c+1): it gets
   almost no test image right, is refused against version 1 (exit 4), and serving keeps version 1;
3. a better model is trained on the correct labels: it gets almost every test image right and is
   pushed as version 2.

Val and test images always keep their true folder, so every model is judged on correct labels.
The recipe is the same in every run: a linear head trained on the frozen features of the shared
pretrained backbone (../shared/weights; the test skips without it), a convex fit that learns
whatever labels it is given; only the training labels differ. The TFLite variants are float32 only (parity with
the SavedModel is checked at export), so the baseline comparison is the only check that can fail.
"""

import csv
import json
import re
import shutil

import pytest
from pipeline_helpers import make_folder, pipeline_run, published

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

COMMON = (
    "--image-size",
    "96",
    "--batch-size",
    "8",
    "--splits",
    "train=0.5,val=0.2,test=0.3",
    "--set",
    "export.formats=[tflite_float32]",
    "--set",
    "export.representative_examples=8",
    "--set",
    "evaluate.min_accuracy=0.0",  # only the comparison with the baseline can fail
    "--set",
    "train.warm_start=none",  # the same recipe from the same backbone every run, whatever is in production
    # a linear head on frozen pretrained features: a convex fit, so each model learns its labels
    "--set",
    "train.stages=[{name: head, epochs: 40, learning_rate: 0.01, unfreeze: none, augment: false}]",
)


def _relabelled(folder, root, manifest_dir, mapping: dict, name: str):
    """A copy of `folder` whose train images of class c sit in the folder of class mapping[c]."""
    out = root / name
    shutil.copytree(folder, out)
    with open(manifest_dir / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(1 for _ in folder.rglob("*.png")), "every image was ingested"
    for row in rows:
        klass, file = row["path"].split("/")
        if row["split"] == "train" and mapping.get(klass, klass) != klass:
            shutil.move(str(out / klass / file), str(out / mapping[klass] / f"from_{klass}_{file}"))
    return out


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


def test_worse_model_is_refused_against_v1_and_a_better_one_becomes_v2(tmp_path, shared_weights_dir):
    folder = make_folder(tmp_path / "images", classes=3, per_class=30, size=32)
    root, serving = tmp_path / "root", tmp_path / "serving"
    weights = ("--weights", shared_weights_dir / "mobilenetv2_0.35_96_cifar6_notop.keras")
    split_once = pipeline_run(
        "--data-dir", folder, "--pipeline-root", root, *COMMON, *weights, "--stop-after", "ingest"
    )
    assert split_once.returncode == 0, split_once.stdout[-3000:] + split_once.stderr[-3000:]
    first_ingest = published(root / "ingest")[0]
    swapped = _relabelled(folder, tmp_path, first_ingest, {"class_1": "class_2", "class_2": "class_1"}, "swapped")
    rotated = _relabelled(
        folder, tmp_path, first_ingest, {"class_0": "class_1", "class_1": "class_2", "class_2": "class_0"}, "rotated"
    )

    def run(data):
        proc = pipeline_run(
            "--data-dir", data, "--pipeline-root", root, "--serving-dir", serving, *COMMON, *weights, timeout=600
        )
        print(proc.stdout[-2500:])  # shown by pytest on failure: the accuracies each run printed
        return proc

    first = run(swapped)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _versions(serving) == ["1"]
    first_blessing = _blessing(root, _run_id(first))
    assert first_blessing["blessed"] and first_blessing["baseline"] is None
    assert not [c for c in first_blessing["checks"] if "baseline" in c["name"]], "first run: nothing to compare with"
    first_accuracy = _accuracy(first_blessing)
    assert 0.2 <= first_accuracy <= 0.5, "two of three classes swapped: only class 0 is right"

    worse = run(rotated)
    assert worse.returncode == 4, worse.stdout[-3000:] + worse.stderr[-3000:]
    for component in ("ingest", "validate", "tune", "train", "export", "evaluate", "push"):
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

    better = run(folder)
    assert better.returncode == 0, better.stdout[-3000:] + better.stderr[-3000:]
    assert _versions(serving) == ["1", "2"]
    better_blessing = _blessing(root, _run_id(better))
    assert better_blessing["blessed"] and better_blessing["baseline"] == str(serving / "classifier" / "1")
    change = next(c for c in better_blessing["checks"] if c["name"] == "max_accuracy_drop_vs_baseline")
    better_accuracy = _accuracy(better_blessing)
    assert change["passed"] and change["value"] > 0 and better_accuracy > first_accuracy
    push = json.loads((serving / "classifier" / "2" / "assets.extra" / "push.json").read_text())
    assert push["blessed"] and not push["forced"]
    assert push["evaluate_dir"] == str(root / "evaluate" / _run_id(better))

    print(
        f"test accuracy: v1 (2 classes swapped) {first_accuracy:.3f}, rotated labels {worse_accuracy:.3f}, "
        f"correct labels {better_accuracy:.3f}"
    )
    test_splits = set()
    for ingest in published(root / "ingest"):
        with open(ingest / "manifest.csv") as f:
            test_splits.add(frozenset(r["sha256"] for r in csv.DictReader(f) if r["split"] == "test"))
    assert len(test_splits) == 1, "every model was judged on the same test images"
