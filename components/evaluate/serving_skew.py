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

import hashlib
import os

import numpy as np
import tensorflow as tf

from components.common.normalisation import served_format
from schemas import feature_spec
from schemas.artifacts import Examples


def check(runner, examples: Examples, split: str, serialized: list, answers: list, count: int, batch_size: int):
    """(files checked, [(path, the record's answer, the file's answer)] where they differ, why none was
    checked or None). Up to `count` of the split's originals, spread evenly over it, are each read once:
    hashed against the manifest, then scored through `serving_default` in batches of `batch_size`."""
    source = (examples.json_or_none(Examples.STATS) or {}).get("source")
    if count < 1:
        return 0, [], "evaluate.skew_examples is 0"
    if not source or not tf.io.gfile.isdir(source):
        return 0, [], f"the ingest's source folder {source!r} is not readable here"
    digests = {row["path"]: row["sha256"] for row in examples.manifest() if row["split"] == split}
    names = tf.io.parse_example(tf.constant(serialized), feature_spec("filename"))["filename"].numpy()
    checked, differing, batch = 0, [], []

    def score(batch):
        _, got = runner.answer_encoded([data for _, _, data in batch])
        return [(path, answers[i], answer) for (i, path, _), answer in zip(batch, got) if answer != answers[i]]

    for i in np.unique(np.linspace(0, len(serialized) - 1, min(len(serialized), 4 * count)).astype(int)):
        name = names[i].decode()
        path = os.path.join(source, name)
        if name not in digests or not tf.io.gfile.exists(path):
            continue
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        if not served_format(data) or hashlib.sha256(data).hexdigest() != digests[name]:
            continue
        batch.append((int(i), path, data))
        checked += 1
        if len(batch) == batch_size or checked == count:
            differing += score(batch)
            batch = []
        if checked == count:
            break
    if batch:
        differing += score(batch)
    return checked, differing, None if checked else "no original file of the split is readable and unchanged"
