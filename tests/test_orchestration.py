"""The DAG's caching and selection: what reruns, what is reused, and one real cached rerun.

Most tests drive `pipeline.run.main` in-process with fast stand-ins for the components
(tests/pipeline_helpers.py: same arguments, same publish-by-rename), so the orchestration's
decisions are checked in milliseconds; the last test reruns a real end-to-end run.
"""
import re

import pytest
from pipeline_helpers import install_fakes, make_folder, pipeline_run, read_log, shared_first_run

from pipeline import run as run_mod

ALL = ["ingest", "validate", "train", "export", "evaluate", "push"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Run pipeline.run in-process on stand-in components; returns main(*extra_args) -> (code, calls)."""
    install_fakes(monkeypatch)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    base = ["--data-dir", str(folder), "--pipeline-root", str(tmp_path / "root"), "--weights", "none"]

    def main(*extra):
        before = len(read_log(log))
        code = run_mod.main(base + list(extra))
        return code, [c["component"] for c in read_log(log)[before:]]

    main.root = tmp_path / "root"
    main.folder = folder
    return main


def test_unchanged_rerun_skips_every_component(fake, capsys):
    assert fake() == (0, ALL)
    capsys.readouterr()
    assert fake() == (0, [])
    out = capsys.readouterr().out
    assert all(f"{c}: unchanged, reusing" in out for c in ALL), out


def test_touching_train_config_reruns_train_and_downstream_not_ingest(fake):
    assert fake()[1] == ALL
    assert fake("--set", "train.label_smoothing=0.05") == (0, ["train", "export", "evaluate", "push"])
    assert fake("--set", "train.label_smoothing=0.05") == (0, [])  # and that result is cached in turn


def test_changed_data_reruns_everything(fake):
    fake()
    (fake.folder / "class_0" / "new.png").write_bytes((fake.folder / "class_0" / "img_000.png").read_bytes() + b"x")
    assert fake()[1] == ALL


def test_touched_files_are_proven_unchanged_by_content(fake, capsys):
    import os

    fake()
    image = fake.folder / "class_1" / "img_000.png"
    os.utime(image, (1_000_000, 1_000_000))  # new modification time, same bytes: the cheap listing changes
    assert fake() == (0, [])
    assert "touched but their content is unchanged" in capsys.readouterr().out
    data = bytearray(image.read_bytes())
    data[-1] ^= 0xFF  # same size, same time as the listing saw, other content
    image.write_bytes(bytes(data))
    os.utime(image, (2_000_000, 2_000_000))
    assert fake()[1] == ALL


def test_force_reruns_component_and_downstream(fake):
    fake()
    assert fake("--force", "export") == (0, ["export", "evaluate", "push"])


def test_stop_after_and_only(fake, capsys):
    assert fake("--stop-after", "train") == (0, ["ingest", "validate", "train"])
    code, calls = fake("--only", "push")
    assert code == 2 and calls == [], "push needs an export that no run produced"
    assert "needs the output of export" in capsys.readouterr().err
    assert fake("--only", "export") == (0, ["export"])  # its inputs: the latest train and ingest
    assert fake("--only", "export") == (0, [])
    assert fake("--only", "export", "--force", "export") == (0, ["export"])


def test_only_with_stop_after_is_a_usage_error(fake, capsys):
    assert fake("--only", "train", "--stop-after", "train") == (2, [])
    assert "--only" in capsys.readouterr().err


def test_real_rerun_with_nothing_changed_finishes_in_seconds(tmp_path_factory):
    root, _folder, args, first = shared_first_run(tmp_path_factory)
    assert "[pipeline] push: done" in first.stdout
    again = pipeline_run(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    for component in ALL:
        assert f"[pipeline] {component}: unchanged, reusing" in again.stdout, again.stdout
    seconds = float(re.search(r"complete \(exit code 0\) in ([\d.]+) s", again.stdout).group(1))
    first_seconds = float(re.search(r"complete \(exit code 0\) in ([\d.]+) s", first.stdout).group(1))
    assert seconds < 10 and seconds < first_seconds / 5, (seconds, first_seconds)


def test_train_fraction_subsamples_train_per_class_and_keeps_val_test(tmp_path):
    import csv

    import numpy as np
    from ingest_format import ImageRecord, write_ingest_dir

    from components.common import subsample

    rng = np.random.default_rng(0)
    records = [ImageRecord(split, label, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "png")
               for label in range(3) for split, n in (("train", 20 + 4 * label), ("val", 3), ("test", 3))
               for _ in range(n)]
    ingest = write_ingest_dir(tmp_path / "ingest", records, ["a", "b", "c"], tfds_metadata=False)

    def rows(path):
        with open(f"{path}/manifest.csv") as f:
            return list(csv.DictReader(f))

    quarter = subsample.run(ingest, 0.25, str(tmp_path / "quarter"))
    half = subsample.run(ingest, 0.5, str(tmp_path / "half"))
    assert quarter == {"train_before": 72, "train_after": 5 + 6 + 7, "fraction": 0.25}
    assert half["train_after"] == 10 + 12 + 14
    q, h, full = rows(tmp_path / "quarter"), rows(tmp_path / "half"), rows(ingest)
    assert [r for r in q if r["split"] != "train"] == [r for r in full if r["split"] != "train"]
    assert {r["sha256"] for r in q} <= {r["sha256"] for r in h}, "a smaller fraction keeps a subset"
    from components.train.input import count_examples

    assert count_examples(str(tmp_path / "quarter"), "train") == 18
    import tensorflow as tf

    shards = tf.io.gfile.glob(str(tmp_path / "quarter" / "data" / "*" / "*" / "*-train.tfrecord-*"))
    assert sum(1 for _ in tf.data.TFRecordDataset(shards)) == 18
