"""Bad input ends the ingest with a clear, actionable error and its documented exit code.

Every failing case leaves nothing behind in the output's parent folder, and the message names
what is wrong and where. Cases that do not stop the run (a non-UTF-8 file name) keep the
accounting invariant.
"""

import json
import os

import pytest

from components.common.errors import EXIT_DATA, EXIT_USAGE, DataError, UsageError
from components.ingest import IngestConfig, run
from tests.image_fixtures import rgb_jpeg_bytes, text_bytes, write_file


def make_tree(root, classes=("cats", "dogs"), per_class=3):
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_file(os.path.join(root, name, f"{i}.jpg"), rgb_jpeg_bytes(32, 32, seed=100 * c + i))
    return root


def fails(config, tmp_path, error, *words, previous_dir=None):
    """Run the ingest expecting `error`; check the message and that no output was written."""
    out = tmp_path / "out"
    os.makedirs(out, exist_ok=True)
    with pytest.raises(error) as caught:
        run(config, str(out / "ingest"), previous_dir=previous_dir)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    assert os.listdir(out) == []
    return caught.value


def test_missing_data_folder(tmp_path):
    e = fails(IngestConfig(data_dir=str(tmp_path / "nope")), tmp_path, DataError, "does not exist", "--data-dir")
    assert e.exit_code == EXIT_DATA


def test_data_folder_is_a_file(tmp_path):
    write_file(str(tmp_path / "photos.zip"), b"zip")
    fails(IngestConfig(data_dir=str(tmp_path / "photos.zip")), tmp_path, DataError, "is a file")


def test_empty_data_folder(tmp_path):
    os.makedirs(tmp_path / "data")
    fails(IngestConfig(data_dir=str(tmp_path / "data")), tmp_path, DataError, "is empty")


def test_images_outside_class_folders(tmp_path):
    for i in range(3):
        write_file(str(tmp_path / "data" / f"{i}.jpg"), rgb_jpeg_bytes(seed=i))
    fails(IngestConfig(data_dir=str(tmp_path / "data")), tmp_path, DataError, "sub-folder", "3 files directly in it")


def test_one_class_only(tmp_path):
    make_tree(str(tmp_path / "data"), classes=("cats",))
    fails(IngestConfig(data_dir=str(tmp_path / "data")), tmp_path, DataError, "only one class", "'cats'")


def test_no_image_at_all(tmp_path):
    for name in ("cats", "dogs"):
        write_file(str(tmp_path / "data" / name / "notes.jpg"), text_bytes())
    fails(IngestConfig(data_dir=str(tmp_path / "data")), tmp_path, DataError, "no usable images", "rejected")


def test_unreadable_folder(tmp_path, monkeypatch):
    # Tests run as root, which reads chmod-000 folders anyway, so the OS error is simulated.
    data = make_tree(str(tmp_path / "data"))
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("dogs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    fails(IngestConfig(data_dir=data), tmp_path, DataError, "cannot read the folder", "dogs", "permissions")


def test_symlink_loop_is_ignored_counted_and_warned_about(tmp_path):
    from components.validate import checks
    from components.validate.config import ValidateConfig

    data = make_tree(str(tmp_path / "data"))
    os.symlink(data, os.path.join(data, "dogs", "again"))
    os.symlink(os.path.join(data, "cats"), os.path.join(data, "cats", "deeper"))
    result = run(IngestConfig(data_dir=data), str(tmp_path / "out"))
    assert result.ignored == {"symlink_loop": 2} and result.kept == 6
    assert result.found == result.kept + sum(result.rejected.values()) + sum(result.ignored.values())
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["ignored_by_reason"] == {"symlink_loop": 2}
    assert stats["symlink_loops"] == ["cats/deeper", "dogs/again"]
    warnings = [a for a in checks.class_counts(stats, ValidateConfig()) if a.code == "symlink_loop"]
    assert [a.severity for a in warnings] == ["warning", "warning"]
    assert "'dogs/again'" in warnings[1].message and "not followed" in warnings[1].message


def test_non_utf8_file_name_is_rejected_with_a_reason(tmp_path):
    data = make_tree(str(tmp_path / "data"))
    with open(os.path.join(data.encode(), b"cats", b"caf\xe9.jpg"), "wb") as f:
        f.write(rgb_jpeg_bytes(seed=77))
    result = run(IngestConfig(data_dir=data), str(tmp_path / "out"))
    assert result.rejected == {"bad_filename": 1} and result.kept == 6
    assert result.kept + sum(result.rejected.values()) + sum(result.ignored.values()) == result.found == 7
    rejected = open(os.path.join(result.output_dir, "rejected.csv"), encoding="utf-8").read()
    assert "cats/caf\\xe9.jpg,bad_filename" in rejected and "rename" in rejected


@pytest.mark.parametrize(
    "splits, words",
    [
        ({"train": 0.8, "val": 0.1}, ["sum to 0.9"]),
        ({"train": 0.9, "val": -0.1, "test": 0.2}, ["splits['val']", "(0, 1]"]),
        ({"train": 0.8, "dev": 0.2}, ["unknown split", "dev"]),
        ({"val": 0.5, "test": 0.5}, ["'train'"]),
    ],
)
def test_invalid_split_fractions(tmp_path, splits, words):
    e = fails(IngestConfig(data_dir=make_tree(str(tmp_path / "data")), splits=splits), tmp_path, UsageError, *words)
    assert e.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("min_side", 0, ["ingest.min_side=0", ">= 1"]),
        ("max_side", 8, ["ingest.max_side=8", ">= 16"]),
        ("max_pixels", 100, ["min_side=16", "max_pixels=100"]),
        ("dataset_name", "My Photos", ["dataset_name", "lower-case"]),
    ],
)
def test_invalid_limits_name_the_field(tmp_path, field, value, words):
    fails(IngestConfig(data_dir=make_tree(str(tmp_path / "data")), **{field: value}), tmp_path, UsageError, *words)


def test_exactly_one_source(tmp_path):
    fails(IngestConfig(), tmp_path, UsageError, "--data-dir", "--tfds-name")
    fails(IngestConfig(data_dir="x", tfds_name="mnist"), tmp_path, UsageError, "exactly one source")


def test_existing_output_is_never_overwritten(tmp_path):
    os.makedirs(tmp_path / "out" / "ingest")
    with pytest.raises(UsageError, match="already exists"):
        run(IngestConfig(data_dir=make_tree(str(tmp_path / "data"))), str(tmp_path / "out" / "ingest"))
    assert os.listdir(tmp_path / "out" / "ingest") == []


def test_previous_ingest_without_manifest(tmp_path):
    os.makedirs(tmp_path / "old")
    fails(
        IngestConfig(data_dir=make_tree(str(tmp_path / "data"))),
        tmp_path,
        DataError,
        "no manifest.csv",
        previous_dir=str(tmp_path / "old"),
    )


def test_unknown_tfds_name(tmp_path):
    fails(IngestConfig(tfds_name="no_such_dataset_xyz"), tmp_path, UsageError, "--tfds-name", "not a TFDS dataset")


def test_tfds_offline_points_to_data_dir(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(self, *args, **kwargs):  # what TFDS raises after its retries when there is no network
        raise ConnectionError("Max retries exceeded with url: storage.googleapis.com")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    fails(
        IngestConfig(tfds_name="mnist", tfds_data_dir=str(tmp_path / "tfds")),
        tmp_path,
        DataError,
        "'mnist'",
        "ConnectionError",
        "--data-dir",
    )
