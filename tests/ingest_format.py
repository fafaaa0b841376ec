"""Write an ingest-format output directory from in-memory images, without running the Beam ingest.

Unit tests of the trainer, exporter and evaluator need a small, valid ingest artifact in well
under a second; the Beam ingest takes tens of seconds to start. This helper writes exactly the
layout `schemas/ARTIFACTS.md` describes ("ingest -> ..."): TFDS-named shards of tf.Examples
following `schemas/image_example.pbtxt`, TFDS metadata (so `tfds.builder_from_directory` loads
it), `labels.txt`, `manifest.csv`, `rejected.csv`, `stats.json` and the `_COMPLETE` marker.

    from tests.ingest_format import write_synthetic_ingest_dir
    ingest_dir = write_synthetic_ingest_dir(tmp_path / "ingest", labels=["a", "b", "c"])

`write_ingest_dir` takes your own images (uint8 arrays, or already-encoded bytes) instead.
"""

import csv
import dataclasses
import hashlib
import io
import json
import os
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

import schemas
from components.common.publish import COMPLETE_MARKER

MANIFEST_FIELDS = ["path", "sha256", "label", "label_text", "split", "height", "width", "format", "bytes"]
DATASET_VERSION = "1.0.0"


@dataclasses.dataclass
class ImageRecord:
    """One image to write: `image` is a uint8 [h, w, 3] array (encoded as `format`) or encoded bytes."""

    split: str
    label: int
    image: "np.ndarray | bytes"
    format: str = "jpeg"
    filename: str = ""


def encode(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode a uint8 RGB array as JPEG or PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8), "RGB").save(buf, "JPEG" if fmt == "jpeg" else "PNG", quality=quality)
    return buf.getvalue()


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _shard_name(dataset_name: str, split: str, index: int, count: int) -> str:
    return f"{dataset_name}-{split}.tfrecord-{index:05d}-of-{count:05d}"


def write_ingest_dir(
    ingest_dir,
    records: Iterable[ImageRecord],
    labels: Sequence[str],
    *,
    dataset_name: str = "images",
    shards_per_split: int = 1,
    tfds_metadata: bool = True,
) -> str:
    """Write `records` as an ingest output directory at `ingest_dir`; returns its path as a string.

    Splits with no records get no shards (as the ingest would do). `tfds_metadata=False` skips
    `dataset_info.json`/`features.json` (importing TFDS costs a few seconds).
    """
    ingest_dir = os.fspath(ingest_dir)
    data_dir = os.path.join(ingest_dir, "data", dataset_name, DATASET_VERSION)
    tf.io.gfile.makedirs(data_dir)
    by_split: dict = {}
    manifest = []
    for i, record in enumerate(records):
        if isinstance(record.image, (bytes, bytearray)):
            encoded = bytes(record.image)
            height, width = Image.open(io.BytesIO(encoded)).size[::-1]
        else:
            encoded = encode(record.image, record.format)
            height, width = record.image.shape[:2]
        label_text = labels[record.label]
        filename = record.filename or f"{label_text}/{i:05d}.{'jpg' if record.format == 'jpeg' else 'png'}"
        sha = hashlib.sha256(encoded).hexdigest()
        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image": _bytes(encoded),
                    "format": _bytes(record.format.encode()),
                    "height": _int(height),
                    "width": _int(width),
                    "label": _int(record.label),
                    "label_text": _bytes(label_text.encode()),
                    "filename": _bytes(filename.encode()),
                    "sha256": _bytes(sha.encode()),
                }
            )
        )
        by_split.setdefault(record.split, []).append(example.SerializeToString())
        manifest.append(
            [filename, sha, record.label, label_text, record.split, height, width, record.format, len(encoded)]
        )

    for split, serialized in by_split.items():
        count = min(shards_per_split, len(serialized))
        for index in range(count):
            path = os.path.join(data_dir, _shard_name(dataset_name, split, index, count))
            with tf.io.TFRecordWriter(path) as writer:
                for record in serialized[index::count]:
                    writer.write(record)

    with tf.io.gfile.GFile(os.path.join(ingest_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{name}\n" for name in labels))
    with tf.io.gfile.GFile(os.path.join(ingest_dir, "manifest.csv"), "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows(manifest)
    with tf.io.gfile.GFile(os.path.join(ingest_dir, "rejected.csv"), "w") as f:
        f.write("path,reason,detail\n")
    splits = sorted(by_split)
    per_class_per_split = {
        name: {split: sum(1 for row in manifest if row[4] == split and row[2] == k) for split in splits}
        for k, name in enumerate(labels)
    }
    stats = {  # the keys the Beam ingest writes (components/ingest/outputs.py); the validator reads them
        "files": {"found": len(manifest), "kept": len(manifest), "rejected": 0, "ignored": 0},
        "labels": list(labels),
        "per_class_per_split": per_class_per_split,
        "per_split": {split: len(by_split[split]) for split in splits},
        "rejected_by_reason": {},
        "ignored_by_reason": {},
        "previous_ingest": None,
        "seconds": 0.0,
        "source": "tests/ingest_format.py (in-memory images)",
        "splits": {split: len(by_split[split]) / max(1, len(manifest)) for split in splits},
    }
    with tf.io.gfile.GFile(os.path.join(ingest_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
    if tfds_metadata and by_split:
        _write_tfds_metadata(data_dir, labels)
    with tf.io.gfile.GFile(os.path.join(ingest_dir, COMPLETE_MARKER), "w") as f:  # written last, as publish_dir does
        json.dump({"complete": True}, f)
    return ingest_dir


def _write_tfds_metadata(data_dir: str, labels: Sequence[str]) -> None:
    """Write dataset_info.json and features.json with TFDS's own writer (it counts the shards)."""
    import tensorflow_datasets as tfds

    features = schemas.tfds_features(labels)
    tfds.folder_dataset.write_metadata(data_dir=data_dir, features=features, check_data=True)


def synthetic_image(label: int, num_classes: int, size, rng: np.random.Generator) -> np.ndarray:
    """A noisy image whose hue and stripe direction depend on the class, so tiny models can learn it."""
    height, width = size
    hue = np.array([np.cos(2 * np.pi * label / num_classes), np.sin(2 * np.pi * label / num_classes), 0.0])
    base = 128 + 90 * np.array([hue[0], hue[1], -hue[0]])
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = np.sin((xx if label % 2 else yy) * (0.3 + 0.1 * (label % 3)))[..., None] * 40
    image = base + stripes + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic_ingest_dir(
    ingest_dir,
    labels: Sequence[str] = ("cat", "dog", "fish"),
    per_split: "dict[str, int] | None" = None,
    image_size=(40, 48),
    fmt: str = "jpeg",
    seed: int = 0,
    **kwargs,
) -> str:
    """An ingest directory of learnable synthetic images; `per_split` counts are per class.

    `fmt` is "jpeg", "png" or "mixed" (alternating). Extra keyword arguments go to `write_ingest_dir`.
    """
    per_split = {"train": 8, "val": 4, "test": 4} if per_split is None else per_split
    rng = np.random.default_rng(seed)
    records = []
    for split, count in per_split.items():
        for label in range(len(labels)):
            for i in range(count):
                record_fmt = fmt if fmt != "mixed" else ("jpeg", "png")[i % 2]
                image = synthetic_image(label, len(labels), image_size, rng)
                records.append(ImageRecord(split, label, image, record_fmt))
    return write_ingest_dir(ingest_dir, records, list(labels), **kwargs)
