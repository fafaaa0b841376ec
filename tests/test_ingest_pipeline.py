"""The ingest pipeline end to end on a small generated tree: outputs, records, runners, TFDS.

One tree (`fixture_tree`, from tests/image_fixtures.py: good images, every reject and
normalisation case, duplicates, a label conflict, ignored files, a nested folder) is ingested
once in-process (`ingested`) and its output checked by several tests.
"""

import csv
import hashlib
import json
import os
import pathlib
import socket

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner

from components.common.beam_runner import make_pipeline
from components.common.publish import is_complete
from components.ingest import IngestConfig, outputs, run
from schemas import feature_spec
from tests.image_fixtures import IGNORED, KEPT, ONE_OF_TWIN, REJECTED, build_fixture_tree, rgb_jpeg_bytes, write_file

CLASSES = ["ants", "bees", "wasps"]


def records(ingest_dir, dataset_name="images"):
    """{split: [parsed example dict]} read back from the TFDS-named shards with the schema's spec."""
    ds_dir = os.path.join(ingest_dir, "data", dataset_name, "1.0.0")
    out = {}
    for split in ("train", "val", "test"):
        files = sorted(tf.io.gfile.glob(os.path.join(ds_dir, f"{dataset_name}-{split}.tfrecord-*")))
        out[split] = [
            {k: v.numpy() for k, v in tf.io.parse_single_example(r, feature_spec()).items()}
            for r in tf.data.TFRecordDataset(files)
        ]
    return out


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def assert_accounting(ingest_dir):
    files = json.load(open(os.path.join(ingest_dir, "stats.json")))["files"]
    assert files["kept"] + files["rejected"] + files["ignored"] == files["found"]


@pytest.fixture(scope="module")
def fixture_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    expected = build_fixture_tree(str(root), classes=tuple(CLASSES), good_per_class=12)
    deep = "bees/holiday/2024/deep.jpg"  # deeper folders belong to their first-level class
    write_file(str(root / deep), rgb_jpeg_bytes(40, 40, seed=999))
    return root, expected, deep


@pytest.fixture(scope="module")
def ingested(fixture_tree, tmp_path_factory):
    root, _, _ = fixture_tree
    out = tmp_path_factory.mktemp("out") / "ingest"
    return run(IngestConfig(data_dir=str(root)), str(out))


def test_every_file_is_kept_rejected_or_ignored_as_expected(fixture_tree, ingested):
    root, expected, deep = fixture_tree
    out = ingested.output_dir
    assert_accounting(out)
    kept = {r["path"]: r for r in read_csv(os.path.join(out, "manifest.csv"))}
    rejected = {r["path"]: r for r in read_csv(os.path.join(out, "rejected.csv"))}
    assert deep in kept and kept[deep]["label_text"] == "bees"
    twins = [p for p, e in expected.items() if e.outcome == ONE_OF_TWIN]
    assert (
        sum(p in kept for p in twins) == 1 and sum(rejected.get(p, {}).get("reason") == "duplicate" for p in twins) == 1
    )
    for path, e in expected.items():
        if e.outcome == KEPT:
            assert path in kept, path
        elif e.outcome == REJECTED:
            assert rejected[path]["reason"] == e.reason, path
    n_ignored = sum(e.outcome == IGNORED for e in expected.values())
    assert ingested.found == len(expected) + 1
    assert sum(ingested.ignored.values()) == n_ignored
    assert ingested.kept == len(kept) and sum(ingested.rejected.values()) == len(rejected)
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["inspection_counts"]["files_read"] == ingested.found - n_ignored - ingested.rejected.get(
        "unreadable", 0
    )
    assert (root / "ants").exists()  # the input folder is only read


def test_records_follow_the_schema_and_match_the_manifest(ingested):
    out = ingested.output_dir
    by_split = records(out)
    manifest = {r["sha256"]: r for r in read_csv(os.path.join(out, "manifest.csv"))}
    labels = open(os.path.join(out, "labels.txt")).read().split()
    assert labels == CLASSES
    seen = set()
    for split, examples in by_split.items():
        assert len(examples) == ingested.split_totals[split]
        for ex in examples:
            sha = ex["sha256"].decode()
            row = manifest[sha]
            assert row["split"] == split and int(row["label"]) == ex["label"]
            assert labels[ex["label"]] == ex["label_text"].decode() == row["label_text"]
            assert ex["filename"].decode() == row["path"]
            image = tf.io.decode_image(ex["image"], channels=3)
            assert image.shape[:2] == (ex["height"], ex["width"])
            assert ex["format"].decode() in ("jpeg", "png")
            seen.add(sha)
    assert seen == set(manifest)


def test_shard_count_follows_data_size_and_tfds_loads_every_shard(fixture_tree, tmp_path):
    root, _, _ = fixture_tree
    result = run(IngestConfig(data_dir=str(root), shard_bytes=8 * 1024, dataset_name="tiny"), str(tmp_path / "o"))
    assert_accounting(result.output_dir)
    ds_dir = result.dataset_dir
    train = sorted(f for f in os.listdir(ds_dir) if f.startswith("tiny-train.tfrecord-"))
    total = sum(os.path.getsize(os.path.join(ds_dir, f)) for f in train)
    assert len(train) >= total // (8 * 1024) >= 2
    assert train[0] == f"tiny-train.tfrecord-00000-of-{len(train):05d}"
    builder = tfds.builder_from_directory(ds_dir)
    assert builder.info.splits["train"].num_shards == len(train)
    assert sum(1 for _ in builder.as_dataset(split="train")) == result.split_totals["train"]


@pytest.mark.slow
def test_one_worker_and_two_processes_write_the_same_records(ingested, fixture_tree, tmp_path):
    root, _, _ = fixture_tree
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    parallel = run(IngestConfig(data_dir=str(root)), str(tmp_path / "mp"), beam_options=options)
    assert_accounting(parallel.output_dir)

    def digest(ingest_dir):
        return {
            split: sorted(hashlib.sha256(repr(sorted(ex.items())).encode()).hexdigest() for ex in examples)
            for split, examples in records(ingest_dir).items()
        }

    assert digest(parallel.output_dir) == digest(ingested.output_dir)

    def shards(result):  # issue 11: shards are filled in path order, so they are the same bytes
        return {
            name: (pathlib.Path(result.dataset_dir) / name).read_bytes()
            for name in os.listdir(result.dataset_dir)
            if ".tfrecord-" in name
        }

    assert shards(parallel) == shards(ingested)


def test_direct_runner_never_touches_the_network(fixture_tree, tmp_path, monkeypatch):
    assert isinstance(make_pipeline(PipelineOptions(["--runner=DirectRunner"])).runner, fn_runner.FnApiRunner)
    assert isinstance(make_pipeline(None).runner, fn_runner.FnApiRunner)
    real_lookup, attempts = socket.getaddrinfo, []

    def local_only(host, *args, **kwargs):
        # Beam swallows a failed Prism download and falls back, so record attempts, do not only raise.
        if host not in ("127.0.0.1", "localhost", "::1"):
            attempts.append(host)
            raise OSError("network disabled by the test")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)  # plain DirectRunner looks up github.com here
    root, _, _ = fixture_tree
    result = run(
        IngestConfig(data_dir=str(root)), str(tmp_path / "o"), beam_options=PipelineOptions(["--runner=DirectRunner"])
    )
    assert_accounting(result.output_dir)
    assert attempts == []


def test_tfds_name_ingests_a_tfds_dataset(tmp_path):
    with tfds.testing.mock_data(num_examples=60):
        result = run(IngestConfig(tfds_name="mnist", dataset_name="mnist"), str(tmp_path / "o"))
    assert_accounting(result.output_dir)
    assert result.labels == [str(d) for d in range(10)] and result.kept == 60
    builder = tfds.builder_from_directory(result.dataset_dir)
    assert sum(builder.info.splits[s].num_examples for s in ("train", "val", "test")) == 60
    assert json.load(open(os.path.join(result.output_dir, "stats.json")))["source"] == "tfds:mnist"


def test_a_failure_leaves_no_output_and_no_temporary_files(fixture_tree, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "write_tfds_metadata", broken)
    root, _, _ = fixture_tree
    with pytest.raises(OSError):
        run(IngestConfig(data_dir=str(root)), str(tmp_path / "o"))
    assert os.listdir(tmp_path) == []


def test_published_output_is_complete_and_summary_names_the_counts(ingested):
    assert is_complete(ingested.output_dir)
    text = ingested.summary()
    assert "ants" in text and "rejected:" in text and "truncated" in text and "ignored:" in text
    assert f"{ingested.kept} kept" in text


def test_a_long_ingest_prints_its_progress(tmp_path, monkeypatch, capsys):
    """Issue 10: nothing showed that an ingest of thousands of files was moving."""
    from components.ingest import IngestConfig, run, transforms
    from tests.image_fixtures import rgb_jpeg_bytes, write_file

    for c, name in enumerate(["cats", "dogs"]):
        for i in range(4):
            write_file(str(tmp_path / "data" / name / f"{i}.jpg"), rgb_jpeg_bytes(32, 32, seed=10 * c + i))
    monkeypatch.setattr(transforms, "PROGRESS_SECONDS", 0.0)  # a line per file instead of one per 10 s
    run(IngestConfig(data_dir=str(tmp_path / "data")), str(tmp_path / "out"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[ingest] inspecting:")]
    assert lines and lines[-1].endswith("of 8 files done by this worker") and "\r" not in "".join(lines)
