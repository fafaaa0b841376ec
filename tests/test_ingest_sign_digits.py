"""The real sign-language-digits folder: everything kept, exact stratified splits, stable on reruns.

The folder is ingested once per session (`ingested_sign_digits`); the rerun and the modified
folder (20 photos removed, 50 generated ones added, the rest symlinked) reuse that output as
their previous ingest, exactly as the pipeline does with the last run in its root.
"""

import csv
import json
import os

import pytest
import tensorflow_datasets as tfds

from components.ingest import IngestConfig, run
from tests.image_fixtures import rgb_jpeg_bytes

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

CLASSES = [str(d) for d in range(10)]


def manifest(ingest_dir):
    with open(os.path.join(ingest_dir, "manifest.csv")) as f:
        return {row["sha256"]: row for row in csv.DictReader(f)}


def assert_accounting(ingest_dir):
    files = json.load(open(os.path.join(ingest_dir, "stats.json")))["files"]
    assert files["kept"] + files["rejected"] + files["ignored"] == files["found"]


def test_every_photo_is_kept_in_ten_classes_with_exact_splits(ingested_sign_digits):
    stats = json.load(open(ingested_sign_digits / "stats.json"))
    assert_accounting(ingested_sign_digits)
    assert stats["files"]["kept"] == 2062 and stats["files"]["rejected"] == 0
    assert stats["labels"] == CLASSES
    assert (ingested_sign_digits / "labels.txt").read_text().split() == CLASSES
    for name, per_split in stats["per_class_per_split"].items():
        total = sum(per_split.values())
        for split, fraction in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
            assert abs(per_split[split] - fraction * total) <= 1, (name, per_split)
    rows = manifest(ingested_sign_digits)
    assert len(rows) == 2062
    assert {r["label_text"] for r in rows.values()} == set(CLASSES)


def test_splits_load_with_tfds_builder_from_directory(ingested_sign_digits):
    builder = tfds.builder_from_directory(str(ingested_sign_digits / "data" / "images" / "1.0.0"))
    stats = json.load(open(ingested_sign_digits / "stats.json"))
    assert {s: builder.info.splits[s].num_examples for s in ("train", "val", "test")} == stats["per_split"]
    assert builder.info.features["label"].names == CLASSES
    example = next(iter(builder.as_dataset(split="test").take(1)))
    assert example["image"].shape[-1] == 3 and example["image"].dtype.name == "uint8"
    row = manifest(ingested_sign_digits)[example["sha256"].numpy().decode()]
    assert row["split"] == "test" and int(row["label"]) == int(example["label"])


@pytest.fixture(scope="module")
def modified_folder(sign_digits_dir, tmp_path_factory):
    """The real folder with 2 photos per class removed and 5 new ones per class added (symlinks)."""
    root = tmp_path_factory.mktemp("sign-digits-modified")
    removed, added = [], []
    for c, name in enumerate(CLASSES):
        os.makedirs(root / name)
        files = sorted(os.listdir(sign_digits_dir / name))
        for i, file_name in enumerate(files):
            if i < 2:
                removed.append(f"{name}/{file_name}")
                continue
            os.symlink(sign_digits_dir / name / file_name, root / name / file_name)
        for i in range(5):
            (root / name / f"new_{i}.jpg").write_bytes(rgb_jpeg_bytes(64, 64, seed=50_000 + 10 * c + i))
            added.append(f"{name}/new_{i}.jpg")
    return root, removed, added


def test_rerun_and_a_changed_folder_never_move_an_image_between_splits(
    ingested_sign_digits, sign_digits_dir, modified_folder, tmp_path
):
    first = manifest(ingested_sign_digits)

    rerun = run(
        IngestConfig(data_dir=str(sign_digits_dir)), str(tmp_path / "rerun"), previous_dir=str(ingested_sign_digits)
    )
    assert_accounting(rerun.output_dir)
    assert {sha: r["split"] for sha, r in manifest(rerun.output_dir).items()} == {
        sha: r["split"] for sha, r in first.items()
    }

    folder, removed, added = modified_folder
    changed = run(IngestConfig(data_dir=str(folder)), str(tmp_path / "changed"), previous_dir=str(rerun.output_dir))
    assert_accounting(changed.output_dir)
    assert (len(removed), len(added)) == (20, 50)
    after = manifest(changed.output_dir)
    assert changed.kept == 2062 - 20 + 50 == len(after)
    old = [sha for sha in after if sha in first]
    assert len(old) == 2042
    moved = [after[sha]["path"] for sha in old if after[sha]["split"] != first[sha]["split"]]
    assert moved == []
    assert {r["path"] for sha, r in after.items() if sha not in first} == set(added)
