"""Per-image results kept across runs: a prediction, an embedding, a feature vector, keyed by the
image's sha256 and by what computed it, so that a nightly rerun computes them only for new images.

Any step may use it (the gate's scores of the model in production, the audit's frozen-backbone
embeddings, the trainer's head-stage backbone features); all share one folder beside the pipeline root (`<root>/cache/image_results`), one sub-folder per computation:

    <digest>/about.json     what computed these results (any JSON: a model's digest, an input size);
                            <digest> is the sha256 of it, and a folder whose about.json is not the
                            one asked for (a collision, a damaged file) is never read or written
    <digest>/<uuid>.npz     one segment per `add`: "sha256" and one array per field, row for row

Safety: a segment is written to a temporary name in its folder, fsynced and renamed, so a reader
sees it whole or not at all; numpy checks each member's CRC as it loads, and a segment that does
not load or whose arrays disagree in length is deleted and its images computed again. Size: after a
write, whole computations are removed, least recently used first (about.json is touched on use),
until the cache holds at most `max_bytes`; the one in use is kept.

Which key: the sha256 of a record's stored image bytes (`record_keys`), not of the original file: the
same photo ingested with another `ingest.max_side` is other pixels, and so another result.
"""

import hashlib
import io
import json
import os
import uuid
import zipfile

import numpy as np
import tensorflow as tf

from components.common import fileio
from components.common.publish import fsync_dir

ABOUT = "about.json"
DEFAULT_MAX_BYTES = 4 * 2**30


def _describe(about: dict) -> str:
    return json.dumps(about, sort_keys=True, default=str)


class ImageResults:
    """The results of one computation (`about`) under the cache folder `root`."""

    def __init__(self, root: str, about: dict, max_bytes: int = DEFAULT_MAX_BYTES):
        self.root, self.max_bytes = root, max_bytes
        self._about = _describe(about)
        self.dir = os.path.join(root, hashlib.sha256(self._about.encode()).hexdigest())
        self._usable = self._claim()

    def _claim(self) -> bool:
        """True when this folder is ours (created now, or its about.json is exactly `about`)."""
        path = os.path.join(self.dir, ABOUT)
        if fileio.exists(path):
            with fileio.GFile(path, "r") as f:
                found = f.read()
            if found != self._about:
                return False
            if fileio.local(path):
                os.utime(path)  # least recently used first: this one was just used
            return True
        fileio.makedirs(self.dir)
        _write_atomic(path, self._about.encode())
        return True

    def lookup(self, sha256: list) -> dict:
        """{sha256: {field: row}} for the images of `sha256` whose results are kept."""
        wanted, found = set(sha256), {}
        if not self._usable or not wanted:
            return found
        for name in sorted(fileio.listdir(self.dir)):
            if not name.endswith(".npz"):
                continue
            segment = _load(os.path.join(self.dir, name))
            if segment is None:
                continue
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in segment.pop("sha256")]
            for row, key in enumerate(keys):
                if key in wanted and key not in found:
                    found[key] = {field: values[row] for field, values in segment.items()}
        return found

    def add(self, sha256: list, **fields: np.ndarray) -> None:
        """Keep one row of every field per image of `sha256` (a new segment); then bound the cache."""
        if not self._usable or not len(sha256):
            return
        for field, values in fields.items():
            if len(values) != len(sha256):
                raise ValueError(f"image_results.add: {field} has {len(values)} rows for {len(sha256)} images")
        buffer = io.BytesIO()
        np.savez(buffer, sha256=np.array(sha256, dtype="S64"), **fields)
        _write_atomic(os.path.join(self.dir, f"{uuid.uuid4().hex}.npz"), buffer.getvalue())
        self._bound()

    def _bound(self) -> None:
        if not fileio.local(self.root):
            return  # object stores: their lifecycle rules bound a bucket better than a listing here
        sizes, used = {}, {}
        for name in os.listdir(self.root):
            folder = os.path.join(self.root, name)
            if not os.path.isdir(folder):
                continue
            sizes[folder] = sum(e.stat().st_size for e in os.scandir(folder) if e.is_file())
            about = os.path.join(folder, ABOUT)
            used[folder] = os.stat(about).st_mtime if os.path.exists(about) else 0.0
        total = sum(sizes.values())
        for folder in sorted(sizes, key=lambda f: used[f]):
            if total <= self.max_bytes:
                break
            if folder == self.dir:
                continue
            fileio.rmtree(folder)
            total -= sizes[folder]


def record_keys(shards: list, spec: dict) -> tuple:
    """(the key of every record of `shards`, in order: the sha256 of its stored image bytes; {field:
    array of its values} for the other fields of `spec`, the schema's parse spec holding "image").
    Reads the records, decodes no image."""
    fields = [field for field in spec if field != "image"]
    keys, values = [], {field: [] for field in fields}
    batches = tf.data.TFRecordDataset(shards).batch(1024).map(lambda records: tf.io.parse_example(records, spec))
    for batch in batches:
        keys.extend(hashlib.sha256(image).hexdigest() for image in batch["image"].numpy())
        for field in fields:
            values[field].append(batch[field].numpy())
    return keys, {field: np.concatenate(parts) if parts else np.array([]) for field, parts in values.items()}


def records_at(shards: list, indices: list) -> tf.data.Dataset:
    """The serialized records at `indices` (positions in `shards`' order, as `record_keys` lists them):
    the ones whose results are still to be computed."""
    wanted = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(indices, tf.int64), tf.ones(len(indices), tf.int64)), 0
    )
    return (
        tf.data.TFRecordDataset(shards)
        .enumerate()
        .filter(lambda i, record: wanted.lookup(i) > 0)
        .map(lambda i, record: record)
    )


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{os.path.dirname(path)}/.tmp-{uuid.uuid4().hex}"
    with fileio.GFile(tmp, "wb") as f:
        f.write(data)
        if hasattr(f, "flush") and fileio.local(tmp):
            f.flush()
            os.fsync(f.fileno())
    fileio.rename(tmp, path, overwrite=True)
    fsync_dir(os.path.dirname(path))


def _load(path: str):
    """The segment's arrays, or None (the segment is deleted) when it is damaged."""
    try:
        with fileio.GFile(path, "rb") as f:
            with np.load(io.BytesIO(f.read()), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        rows = {len(values) for values in arrays.values()}
        if "sha256" not in arrays or len(rows) != 1:
            raise ValueError("arrays of different lengths")
        return arrays
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        try:
            fileio.remove(path)
        except fileio.errors():
            pass
        return None
