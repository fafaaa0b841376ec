"""Everything the ingest writes besides the examples themselves, and the shard finalisation.

Layout (schemas/ARTIFACTS.md): `data/<name>/1.0.0/` a TFDS dataset directory, `labels.txt`,
`manifest.csv`, `rejected.csv`, `stats.json`. All of it goes into the publish step's temporary
directory; nothing here writes to the final location.
"""
import csv
import io
import math
import os
from typing import Dict, List, Sequence

import tensorflow as tf

import schemas
from components.common.errors import DataError
from components.common.publish import write_json, write_text_atomic
from schemas.artifacts import Examples, labels_text

DATASET_VERSION = "1.0.0"
MANIFEST_FIELDS = ["path", "sha256", "label", "label_text", "split", "height", "width", "format", "bytes"]
REJECTED_FIELDS = ["path", "reason", "detail"]
SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_COPY_CHUNK = 16 * 1024 * 1024


def dataset_dir(root: str, dataset_name: str) -> str:
    """`<ingest_dir>/data/<name>/1.0.0`: the folder `tfds.builder_from_directory` is given."""
    return Examples(root).path(Examples.DATA, dataset_name, DATASET_VERSION)


def shard_name(dataset_name: str, split: str, index: int, count: int) -> str:
    return f"{dataset_name}-{split}.tfrecord-{index:05d}-of-{count:05d}"


def _pack(files: List[dict], shard_bytes: int) -> List[List[dict]]:
    """Group bundle files into shards of at most ~shard_bytes (first fit, largest first)."""
    total = sum(f["bytes"] for f in files)
    bins: List[List[dict]] = [[] for _ in range(max(1, math.ceil(total / shard_bytes)))]
    sizes = [0] * len(bins)
    for f in sorted(files, key=lambda f: (-f["bytes"], f["path"])):
        target = next((i for i, s in enumerate(sizes) if s + f["bytes"] <= shard_bytes), None)
        if target is None:
            target = sizes.index(min(sizes))
        bins[target].append(f)
        sizes[target] += f["bytes"]
    return [b for b in bins if b] or [[]]


def _concatenate(sources: List[str], destination: str) -> None:
    """TFRecord files are sequences of self-framed records, so byte concatenation is a valid file."""
    with tf.io.gfile.GFile(destination, "wb") as out:
        for source in sources:
            with tf.io.gfile.GFile(source, "rb") as f:
                while chunk := f.read(_COPY_CHUNK):
                    out.write(chunk)
            tf.io.gfile.remove(source)


def finalise_shards(files: List[dict], out_dir: str, dataset_name: str, split_names: Sequence[str],
                    shard_bytes: int) -> Dict[str, dict]:
    """Move the per-bundle files into TFDS-named shards; return {split: {shard_lengths, num_bytes}}.

    The shard count of a split is ceil(bytes / shard_bytes) (one at least, an empty file for an
    empty split), so it follows the data size, not the number of workers or bundles.
    """
    tf.io.gfile.makedirs(out_dir)
    result = {}
    for split in split_names:
        bins = _pack([f for f in files if f["split"] == split], shard_bytes)
        lengths, num_bytes = [], 0
        for index, group in enumerate(bins):
            destination = os.path.join(out_dir, shard_name(dataset_name, split, index, len(bins)))
            if len(group) == 1:
                tf.io.gfile.rename(group[0]["path"], destination)
            else:
                _concatenate([f["path"] for f in group], destination)
            lengths.append(sum(f["count"] for f in group))
            num_bytes += sum(f["bytes"] for f in group)
        result[split] = {"shard_lengths": lengths, "num_bytes": num_bytes}
    return result


def write_tfds_metadata(out_dir: str, dataset_name: str, labels: Sequence[str], shards: Dict[str, dict],
                        description: str) -> None:
    """Write dataset_info.json and features.json so `tfds.builder_from_directory(out_dir)` loads it.

    The features come from schemas/image_example.pbtxt (TFDS's flat feature names are the keys).
    """
    import tensorflow_datasets as tfds

    features = schemas.tfds_features(labels)
    split_infos = [
        tfds.core.SplitInfo(name=split, shard_lengths=info["shard_lengths"], num_bytes=info["num_bytes"])
        for split, info in shards.items()
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=out_dir,
        features=features,
        split_infos=split_infos,
        version=DATASET_VERSION,
        filename_template=SHARD_TEMPLATE,
        check_data=False,  # the tests load every layout with builder_from_directory instead
        description=description,
        supervised_keys=("image", "label"),
    )


def _csv_text(fields: Sequence[str], rows: List[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(root: str, labels: Sequence[str], kept: List[dict], rejected: List[dict]) -> None:
    """labels.txt, manifest.csv (every kept image) and rejected.csv (every rejected file)."""
    out = Examples(root)
    write_text_atomic(out.path(Examples.LABELS), labels_text(labels))
    write_text_atomic(out.path(Examples.MANIFEST),
                      _csv_text(MANIFEST_FIELDS, [{**r, "path": r["relpath"]} for r in kept]))
    write_text_atomic(out.path(Examples.REJECTED),
                      _csv_text(REJECTED_FIELDS, [{**r, "path": r["relpath"]} for r in rejected]))


def read_previous_splits(previous_dir: str) -> Dict[str, str]:
    """sha256 -> split of every image in an earlier ingest's manifest.csv."""
    previous = Examples(previous_dir)
    if not previous.exists(Examples.MANIFEST):
        raise DataError(f"previous ingest {previous_dir!r} has no manifest.csv, so the splits of known images "
                        "cannot be kept: point at a complete ingest output, or run without a previous ingest")
    return {row["sha256"]: row["split"] for row in previous.manifest()}


def write_stats(root: str, stats: dict) -> None:
    write_json(Examples(root).path(Examples.STATS), stats)
