"""Issue 11: the ingest that reads each file once writes the same records per split as the one before.

tests/fixtures/ingest_record_digests.json holds, per split, the number of records and the sha256 of
their sorted sha256s, as the ingest of commit 491c097 (inspect, then re-read and write) wrote them
for the fixture tree (every reject and normalisation case) and for the real photos in
../shared/datasets/sign-language-digits. Records are compared byte for byte, order aside.
"""

import hashlib
import json
import os
import pathlib

import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from image_fixtures import build_fixture_tree

from components.ingest import IngestConfig, run

GOLDEN = json.loads((pathlib.Path(__file__).parent / "fixtures" / "ingest_record_digests.json").read_text())
SIGN_DIGITS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits"


def split_digests(dataset_dir: str) -> dict:
    digests = {}
    for name in sorted(os.listdir(dataset_dir)):
        if ".tfrecord-" in name:
            split = name.split("-")[1].split(".")[0]
            for record in tf.data.TFRecordDataset(os.path.join(dataset_dir, name)).as_numpy_iterator():
                digests.setdefault(split, []).append(hashlib.sha256(record).hexdigest())
    return {
        split: {
            "records": len(values),
            "sha256_of_sorted": hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest(),
        }
        for split, values in digests.items()
    }


def test_fixture_tree_records_are_unchanged(tmp_path):
    build_fixture_tree(str(tmp_path / "tree"))
    result = run(IngestConfig(data_dir=str(tmp_path / "tree")), str(tmp_path / "out"))
    assert split_digests(result.dataset_dir) == GOLDEN["fixture_tree"]


@pytest.mark.slow
@pytest.mark.skipif(not SIGN_DIGITS.is_dir(), reason=f"real photos not found at {SIGN_DIGITS}")
def test_real_photos_records_are_unchanged_with_two_worker_processes(tmp_path):
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    # The golden digests were written with every image kept at its own size (max_side was None by default
    # then); some of these photos are larger than today's default max_side of 512.
    config = IngestConfig(data_dir=str(SIGN_DIGITS), max_side=None)
    result = run(config, str(tmp_path / "out"), beam_options=options)
    assert split_digests(result.dataset_dir) == GOLDEN["sign_language_digits"]


def test_records_are_unchanged_where_the_kernel_cannot_copy(tmp_path, monkeypatch):
    """Shards are filled by os.copy_file_range on local disks; where it fails (another filesystem on an
    old kernel), by reads and writes, with the same bytes."""
    import errno

    def refuse(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    build_fixture_tree(str(tmp_path / "tree"))
    result = run(IngestConfig(data_dir=str(tmp_path / "tree")), str(tmp_path / "out"))
    assert split_digests(result.dataset_dir) == GOLDEN["fixture_tree"]
