"""Issue 34: the nightly rerun decodes only new and changed files and writes what a full re-ingest writes.

The fixture tree (every reject and normalisation case, a duplicate pair, a label conflict) plus real
photos is ingested; then the folder changes as a folder does between two nights: photos added,
removed, moved to another class (relabelled), rewritten in place, a corrupt file fixed, and a class
added that sorts first (so every reused record's label index changes). The incremental ingest must
read only what changed, and its output must be byte for byte the full re-ingest's with the same
split memory; it must stay whole when the ingest it reused is deleted.
"""

import filecmp
import os
import pathlib
import shutil

import pytest
import tensorflow as tf
from image_fixtures import CLASSES, build_fixture_tree, rgb_jpeg_bytes

from components.ingest import IngestConfig, run
from schemas import feature_spec
from schemas.artifacts import Examples

SIGN_DIGITS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits"


def _real_photos(count: int, start: int = 0) -> list:
    files = sorted(SIGN_DIGITS.glob("*/*.JPG"))
    return [files[(start + i) * 13 % len(files)] for i in range(count)]


def _files(dataset_dir: str) -> list:
    return sorted(name for name in os.listdir(dataset_dir) if ".tfrecord-" in name)


@pytest.mark.skipif(not SIGN_DIGITS.is_dir(), reason=f"needs the real photos in {SIGN_DIGITS}")
def test_a_rerun_reads_only_what_changed_and_writes_what_a_full_ingest_writes(tmp_path):
    data = tmp_path / "photos"
    build_fixture_tree(str(data))
    first, second = CLASSES[0], CLASSES[1]
    for i, photo in enumerate(_real_photos(12)):
        shutil.copy(photo, data / second / f"real_{i:02d}.jpg")
    config = IngestConfig(data_dir=str(data))
    night1 = run(config, str(tmp_path / "night1"))
    known = Examples(night1.output_dir)

    # The folder a day later.
    added = _real_photos(4, start=50)
    for i, photo in enumerate(added):
        shutil.copy(photo, data / first / f"new_{i}.jpg")
    (data / second / "real_00.jpg").unlink()  # removed
    (data / second / "real_01.jpg").rename(data / first / "real_01.jpg")  # relabelled
    rewritten = data / second / "real_02.jpg"
    rewritten.write_bytes(_real_photos(1, start=70)[0].read_bytes())  # changed in place
    os.utime(rewritten, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    (data / "aaa_new_class").mkdir()  # sorts first: every earlier record's label index moves up by one
    for i in range(3):
        (data / "aaa_new_class" / f"{i}.jpg").write_bytes(rgb_jpeg_bytes(48, 40, seed=9000 + i))
    changed = len(added) + 1 + 1 + 3

    incremental = run(config, str(tmp_path / "night2"), previous_dir=night1.output_dir, reuse=True)
    full = run(config, str(tmp_path / "night2_full"), previous_dir=night1.output_dir)
    inc, ful = Examples(incremental.output_dir), Examples(full.output_dir)

    stats = inc.stats()
    replanned = sum(row["reason"] in ("duplicate", "label_conflict") for row in known.rejected())
    unreadable = sum(row["reason"] == "unreadable" for row in known.rejected())
    assert stats["reused"]["from"] == night1.output_dir
    # Read again: the changed files, and the files judged only together with others (duplicates and
    # label conflicts); unreadable ones are retried but cannot be read.
    assert stats["inspection_counts"]["files_read"] == changed + replanned, stats
    assert stats["reused"]["files"] == stats["files"]["found"] - stats["files"][
        "ignored"
    ] - changed - replanned - unreadable - sum(1 for r in inc.rejected() if r["reason"] == "bad_filename")
    assert ful.stats()["reused"]["files"] == 0

    assert inc.labels() == ful.labels() and inc.labels()[0] == "aaa_new_class"
    assert inc.manifest() == ful.manifest()
    assert inc.rejected() == ful.rejected()
    assert _files(inc.dataset_dir()) == _files(ful.dataset_dir())
    for name in _files(inc.dataset_dir()):
        assert filecmp.cmp(os.path.join(inc.dataset_dir(), name), os.path.join(ful.dataset_dir(), name), shallow=False)
    relabelled = {row["path"]: row for row in inc.manifest()}[f"{first}/real_01.jpg"]
    assert relabelled["split"] == {row["sha256"]: row["split"] for row in known.manifest()}[relabelled["sha256"]]

    # Nothing changed since: only the duplicates and conflicts are read again, and the same dataset is written.
    again = Examples(run(config, str(tmp_path / "night3"), previous_dir=incremental.output_dir, reuse=True).output_dir)
    replanned_now = sum(row["reason"] in ("duplicate", "label_conflict") for row in inc.rejected())
    assert again.stats()["inspection_counts"]["files_read"] == replanned_now and again.manifest() == inc.manifest()
    for name in _files(inc.dataset_dir()):
        assert filecmp.cmp(
            os.path.join(inc.dataset_dir(), name), os.path.join(again.dataset_dir(), name), shallow=False
        )

    # The ingest it reused is deleted: the new one is whole, and TFDS reads every record of it.
    shutil.rmtree(night1.output_dir)
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(inc.dataset_dir())
    count = 0
    for split, total in incremental.split_totals.items():
        records = list(builder.as_dataset(split=split))
        assert len(records) == total
        count += total
    assert count == len(inc.manifest())
    for record in tf.data.TFRecordDataset(inc.shards("train")).take(3):
        parsed = tf.io.parse_single_example(record, feature_spec("image", "label", "label_text"))
        assert inc.labels()[int(parsed["label"])] == parsed["label_text"].numpy().decode()
