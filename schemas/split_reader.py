"""Reading an ingest output's splits with TensorFlow: in batches, whole, or sampled evenly over the classes.

Apart from the artifact contract (schemas/artifacts.py), which names files and loads no framework,
so that the orchestrator and Beam workers can use the contract without TensorFlow.
"""

import numpy as np
import tensorflow as tf

from components.common.errors import DataError
from schemas import feature_spec
from schemas.artifacts import Examples


def batches(examples: Examples, split: str, limit: int | None = None):
    """(serialized, encoded images, labels) lists of `split`'s records, 256 at a time, in shard order."""
    dataset = tf.data.TFRecordDataset(examples.shards(split))
    if limit is not None:
        dataset = dataset.take(limit)
    for record in dataset.batch(256):
        parsed = tf.io.parse_example(record, feature_spec("image", "label"))
        yield record.numpy().tolist(), parsed["image"].numpy().tolist(), parsed["label"].numpy().tolist()


def _checked(examples: Examples, split: str, serialized: list, images: list, labels: list):
    if not images:
        raise DataError(f"the '{split}' split in {examples.uri} has no examples")
    return serialized, images, np.asarray(labels, np.int64)


def read_split(examples: Examples, split: str, limit: int | None = None):
    """(serialized examples, encoded images, int64 labels) of `split`, at most `limit` of each."""
    serialized, images, labels = [], [], []
    for batch in batches(examples, split, limit):
        for whole, part in zip((serialized, images, labels), batch):
            whole.extend(part)
    return _checked(examples, split, serialized, images, labels)


def sample_split(examples: Examples, split: str, count: int, num_classes: int):
    """Like `read_split`, but up to `count` examples spread evenly over the classes.

    Shards hold records in path order, so a class folder's images are contiguous and the first
    `count` records are often one or two classes: a calibration or parity sample taken that way
    describes a model that never sees the others. This keeps the first ceil(count / classes)
    records of each class, reading until every class has its share (at most the whole split);
    a class with fewer leaves its share unfilled. Returned in class-interleaved order.
    """
    share = -(-count // num_classes)
    kept = {}
    for batch in batches(examples, split):
        for record in zip(*batch):
            taken = kept.setdefault(record[2], [])
            if len(taken) < share:
                taken.append(record)
        if len(kept) == num_classes and all(len(v) == share for v in kept.values()):
            break
    interleaved = [kept[label][rank] for rank in range(share) for label in sorted(kept) if rank < len(kept[label])][
        :count
    ]
    columns = [list(column) for column in zip(*interleaved)] or [[], [], []]
    return _checked(examples, split, *columns)
