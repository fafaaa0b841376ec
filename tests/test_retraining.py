"""The nightly-retraining story end to end: push v1, add images, the next run compares and pushes v2 only if not worse."""
import pytest
import csv
import json
import re
import shutil

from pipeline_helpers import make_folder, pipeline_run, shared_first_run

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


def _manifest(ingest_dir) -> dict:
    with open(ingest_dir / "manifest.csv") as f:
        return {row["sha256"]: row["split"] for row in csv.DictReader(f)}


def test_added_images_retrain_and_push_only_if_not_worse(tmp_path_factory):
    root, folder, args, first = shared_first_run(tmp_path_factory)
    serving = root / "serving" / "classifier"
    assert sorted(p.name for p in serving.iterdir() if p.name.isdigit()) == ["1"]
    first_id = re.search(r"\[pipeline\] run (\S+) in", first.stdout).group(1)

    grown = tmp_path_factory.mktemp("grown") / "images"  # the same folder, with new images added
    shutil.copytree(folder, grown)
    make_folder(grown, per_class=6, start=100, seed=1)
    args = [str(grown) if str(a) == str(folder) else a for a in args]
    second = pipeline_run(*args, timeout=900)
    assert second.returncode in (0, 4), second.stdout[-3000:] + second.stderr[-3000:]
    second_id = re.search(r"\[pipeline\] run (\S+) in", second.stdout).group(1)
    for component in ("ingest", "train", "export", "evaluate"):
        assert f"[pipeline] {component}: done in" in second.stdout, component

    old, new = _manifest(root / "ingest" / first_id), _manifest(root / "ingest" / second_id)
    assert len(new) == len(old) + 18
    assert all(new[sha] == split for sha, split in old.items()), "an earlier image changed split"

    blessing = json.loads((root / "evaluate" / second_id / "blessing.json").read_text())
    assert blessing["baseline"] == str(serving / "1"), "compared with the model in serving"
    change = [c for c in blessing["checks"] if "baseline" in c["name"]]
    assert change, blessing["checks"]
    versions = sorted(p.name for p in serving.iterdir() if p.name.isdigit())
    if blessing["blessed"]:
        assert second.returncode == 0 and versions == ["1", "2"]
    else:
        assert second.returncode == 4 and versions == ["1"]
        assert any(not c["passed"] for c in blessing["checks"])

    listing = pipeline_run("list", "--pipeline-root", root, module="pipeline.runs")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[2:]}
    assert str(serving / "1") in rows[first_id]
    assert (str(serving / "2") if blessing["blessed"] else "not blessed") in rows[second_id]
