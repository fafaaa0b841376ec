"""The nightly-retraining story end to end: push v1, add images, the next run re-ingests (no known image
changes split), retrains, compares with the model in serving and pushes v2.

The change threshold is opened for the second run (`max_accuracy_drop_vs_baseline=1`), so the verdict
does not depend on how a 1-epoch model happens to train on this CPU; the comparison itself is still
made and recorded. That a worse model is refused is tests/test_gate_pipeline_run.py's job, with
models whose quality does not depend on training luck.
"""

import csv
import json
import re
import shutil

import pytest
from pipeline_helpers import make_folder, pipeline_run, shared_first_run

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


def _manifest(ingest_dir) -> dict:
    with open(ingest_dir / "manifest.csv") as f:
        return {row["sha256"]: row["split"] for row in csv.DictReader(f)}


def test_added_images_are_ingested_in_stable_splits_compared_with_serving_and_pushed(tmp_path_factory):
    root, folder, args, first = shared_first_run(tmp_path_factory)
    serving = root / "serving" / "classifier"
    assert sorted(p.name for p in serving.iterdir() if p.name.isdigit()) == ["1"]
    first_id = re.search(r"\[pipeline\] run (\S+) in", first.stdout).group(1)

    grown = tmp_path_factory.mktemp("grown") / "images"  # the same folder, with new images added
    shutil.copytree(folder, grown)
    make_folder(grown, per_class=6, start=100, seed=1)
    args = [str(grown) if str(a) == str(folder) else a for a in args]
    second = pipeline_run(*args, "--set", "evaluate.max_accuracy_drop_vs_baseline=1.0", timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    second_id = re.search(r"\[pipeline\] run (\S+) in", second.stdout).group(1)
    for component in ("ingest", "train", "export", "evaluate"):
        assert f"[pipeline] {component}: done in" in second.stdout, component

    old, new = _manifest(root / "ingest" / first_id), _manifest(root / "ingest" / second_id)
    assert len(new) == len(old) + 18
    assert all(new[sha] == split for sha, split in old.items()), "an earlier image changed split"
    reused = json.loads((root / "ingest" / second_id / "stats.json").read_text())
    listed = reused["files"]["found"] - reused["files"]["ignored"]
    assert reused["reused"] == {"from": str(root / "ingest" / first_id), "files": listed - 18}, reused["reused"]
    assert reused["inspection_counts"]["files_read"] == 18  # only the added images were read

    blessing = json.loads((root / "evaluate" / second_id / "blessing.json").read_text())
    assert blessing["baseline"] == str(serving / "1"), "compared with the model in serving"
    change = [c for c in blessing["checks"] if "baseline" in c["name"]]
    assert change, blessing["checks"]
    assert blessing["blessed"] and change[0]["passed"] and isinstance(change[0]["value"], float)
    assert sorted(p.name for p in serving.iterdir() if p.name.isdigit()) == ["1", "2"]

    listing = pipeline_run("list", "--pipeline-root", root, module="pipeline.runs")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[2:]}
    assert str(serving / "1") in rows[first_id]
    assert str(serving / "2") in rows[second_id]
