"""The gate checks what users send: the test split's original files through the bytes-in signature.

Why: the gate scores the ingest's records, which are already normalised (upright, on white, at most
`ingest.max_side`), while users send the files as their cameras wrote them to `serving_default`.
Any difference between the ingest's Pillow normalisation and the signature's in-graph one
(components/common/camera_decode.py) is training/serving skew the records alone cannot show. So a
sample of the split's originals, found by their manifest paths under the ingest's source folder
and still byte-identical (sha256), is scored through `serving_default` and its answers compared
with the records'; a disagreement rate above `evaluate.max_serving_skew` fails the gate, naming the
files. Files in formats the signatures do not decode (TIFF) are not what a server is sent, and are
left out; so are originals that moved or changed since the ingest.
"""

import os

import numpy as np
import tensorflow as tf

from components.common.fileio import file_sha256
from components.common.normalisation import served_format
from schemas import feature_spec
from schemas.artifacts import Examples


def originals(examples: Examples, split: str, serialized: list, count: int) -> tuple:
    """(record indices, original file paths, why none) of up to `count` of the split's records whose
    original file is still readable, unchanged and in a served format, spread evenly over the split."""
    stats = examples.json_or_none(Examples.STATS) or {}
    source = stats.get("source")
    if count < 1:
        return [], [], "evaluate.skew_examples is 0"
    if not source or not tf.io.gfile.isdir(source):
        return [], [], f"the ingest's source folder {source!r} is not readable here"
    digests = {row["path"]: row["sha256"] for row in examples.manifest() if row["split"] == split}
    names = tf.io.parse_example(tf.constant(serialized), feature_spec("filename"))["filename"].numpy()
    indices, paths = [], []
    for i in np.unique(np.linspace(0, len(serialized) - 1, min(len(serialized), 4 * count)).astype(int)):
        name = names[i].decode()
        path = os.path.join(source, name)
        if name not in digests or not tf.io.gfile.exists(path):
            continue
        with tf.io.gfile.GFile(path, "rb") as f:
            head = f.read(16)
        if served_format(head) and file_sha256(path) == digests[name]:
            indices.append(int(i))
            paths.append(path)
        if len(paths) == count:
            break
    return indices, paths, None if paths else "no original file of the split is readable and unchanged"


def disagreements(runner, record_answers: list, indices: list, paths: list, batch_size: int) -> list:
    """[(path, the record's answer, the original's answer)] where scoring the original file through
    `serving_default` answers differently from its record."""
    found = []
    for start in range(0, len(paths), batch_size):
        batch = paths[start : start + batch_size]
        data = []
        for path in batch:
            with tf.io.gfile.GFile(path, "rb") as f:
                data.append(f.read())
        _, answers = runner.answer_encoded(data)
        for i, path, answer in zip(indices[start : start + batch_size], batch, answers):
            if answer != record_answers[i]:
                found.append((path, record_answers[i], answer))
    return found
