"""A copy of an ingest artifact whose train split keeps only a fraction of each class.

`pipeline.run --train-fraction F` trains on it to reproduce "the same model from 20x less data"
experiments in one flag: val and test stay exactly as ingested, so the gate judges the smaller-
data model on the same images as any other. The choice is stratified (each class keeps
round(F * n) of its n train images, at least one) and stable: images are ranked by a seeded hash of
their content (sha256), so the images a small fraction keeps are also kept by any larger one.
The output has the ingest layout of schemas/ARTIFACTS.md and is published by rename.
"""
import csv
import hashlib
import io
import json
import os

import tensorflow as tf

from components.common.errors import UsageError
from components.common.publish import copy_tree, publish_dir, write_text_atomic

TRAIN = "train"


def _rank(sha256: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def choose(rows: list, fraction: float, seed: int = 0) -> set:
    """sha256 of the train images to keep: round(fraction * n) per class (at least 1), by hash rank."""
    by_class = {}
    for row in rows:
        if row["split"] == TRAIN:
            by_class.setdefault(row["label"], []).append(row["sha256"])
    keep = set()
    for shas in by_class.values():
        n = max(1, round(fraction * len(shas)))
        keep.update(sorted(shas, key=lambda s: _rank(s, seed))[:n])
    return keep


def run(ingest_dir: str, fraction: float, output_dir: str, seed: int = 0) -> dict:
    """Write `ingest_dir` with its train split cut to `fraction` per class into `output_dir`.

    Returns {"train_before": n, "train_after": m, "fraction": fraction}.
    """
    if not 0 < fraction <= 1:
        raise UsageError(f"train fraction {fraction!r}: must be in (0, 1], e.g. 0.05 for 20x less data")
    with tf.io.gfile.GFile(os.path.join(ingest_dir, "manifest.csv")) as f:
        text = f.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    keep = choose(rows, fraction, seed)
    shards = sorted(tf.io.gfile.glob(os.path.join(ingest_dir, "data", "*", "*", f"*-{TRAIN}.tfrecord-*")))
    if not shards:
        raise UsageError(f"{ingest_dir} has no train split to subsample")
    info_path = os.path.join(os.path.dirname(shards[0]), "dataset_info.json")
    with publish_dir(output_dir) as tmp:
        copy_tree(ingest_dir, tmp, skip=set(shards) | {os.path.join(ingest_dir, "_COMPLETE")})
        dataset_dir = os.path.join(tmp, os.path.relpath(os.path.dirname(shards[0]), ingest_dir))
        name = os.path.basename(shards[0]).split(f"-{TRAIN}.tfrecord-")[0]
        out = os.path.join(dataset_dir, f"{name}-{TRAIN}.tfrecord-00000-of-00001")
        kept, size = 0, 0
        parse = {"sha256": tf.io.FixedLenFeature([], tf.string)}
        with tf.io.TFRecordWriter(out) as writer:
            for record in tf.data.TFRecordDataset(shards):
                sha = tf.io.parse_single_example(record, parse)["sha256"].numpy().decode()
                if sha in keep:
                    writer.write(record.numpy())
                    kept += 1
                    size += len(record.numpy())
        lines = text.splitlines(keepends=True)
        header, body = lines[0], lines[1:]
        write_text_atomic(os.path.join(tmp, "manifest.csv"), header + "".join(
            line for line, row in zip(body, rows) if row["split"] != TRAIN or row["sha256"] in keep))
        if tf.io.gfile.exists(info_path):
            with tf.io.gfile.GFile(info_path) as f:
                info = json.load(f)
            for split in info.get("splits", []):
                if split.get("name") == TRAIN:
                    split["shardLengths"], split["numBytes"] = [str(kept)], str(size)
            write_text_atomic(os.path.join(dataset_dir, "dataset_info.json"), json.dumps(info, indent=2))
    before = sum(1 for row in rows if row["split"] == TRAIN)
    return {"train_before": before, "train_after": kept, "fraction": fraction}
