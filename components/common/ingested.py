"""Reading an ingest artifact's splits (TFDS-named tf.Example shards) by the exporter and evaluator.

Both need the same few things: the shard files of one split, the encoded images with their
integer labels, and the class names in label order. Paths go through `tf.io.gfile`.
"""
import os

import numpy as np
import tensorflow as tf

from components.common.errors import DataError

_IMAGE_AND_LABEL = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def split_files(ingest_dir: str, split: str) -> list:
    """The shard files of `split` (`data/<name>/<version>/<name>-<split>.tfrecord-*`), sorted."""
    pattern = os.path.join(ingest_dir, "data", "*", "*", f"*-{split}.tfrecord-*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataError(
            f"no '{split}' split in {ingest_dir}: expected shards matching {pattern}. "
            "Point to a complete ingest output (see schemas/ARTIFACTS.md) whose split has images.")
    return files


def read_labels(path: str) -> list:
    """Class names from a labels.txt (one per line, line number = integer label)."""
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path} not found: the class names (labels.txt) must ship with the artifact")
    with tf.io.gfile.GFile(path) as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    if not labels:
        raise DataError(f"{path} is empty: it must list the class names, one per line")
    return labels


def read_split(ingest_dir: str, split: str, limit: int | None = None):
    """Serialized examples, encoded images and int labels of `split` (at most `limit` of each)."""
    dataset = tf.data.TFRecordDataset(split_files(ingest_dir, split))
    if limit is not None:
        dataset = dataset.take(limit)
    serialized, images, labels = [], [], []
    for record in dataset.batch(256):
        parsed = tf.io.parse_example(record, _IMAGE_AND_LABEL)
        serialized.extend(record.numpy().tolist())
        images.extend(parsed["image"].numpy().tolist())
        labels.extend(parsed["label"].numpy().tolist())
    if not images:
        raise DataError(f"the '{split}' split in {ingest_dir} has no examples")
    return serialized, images, np.asarray(labels, np.int64)
