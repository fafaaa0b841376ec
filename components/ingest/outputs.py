"""Everything the ingest writes besides the examples themselves, and the shard finalisation.

Layout (schemas/ARTIFACTS.md): `data/<name>/1.0.0/` a TFDS dataset directory, `labels.txt`,
`manifest.csv`, `rejected.csv`, `stats.json`. All of it goes into the publish step's temporary
directory; nothing here writes to the final location.
"""

import csv
import errno
import io
import math
import os
from typing import Dict, List, Sequence

import schemas
from components.common import fileio
from components.common.errors import DataError
from components.common.publish import write_json, write_text_atomic
from components.ingest import records
from schemas.artifacts import Examples, labels_text

DATASET_VERSION = "1.0.0"
MANIFEST_FIELDS = [
    *("path", "sha256", "label", "label_text", "split", "height", "width", "format", "bytes"),
    "split_source",  # "given" by a manifest's row, or "rule": the stratified, stable split (and its memory)
]
REJECTED_FIELDS = ["path", "reason", "detail"]
INVENTORY_FIELDS = [
    *("path", "label_text", "size", "mtime", "sha256"),  # the file as it was read
    *("shard", "offset", "length", "label", "format", "height", "width", "bytes"),  # a kept one's record
    *("reason", "detail"),  # a rejected one's verdict
]
SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


def dataset_dir(root: str, dataset_name: str) -> str:
    """`<ingest_dir>/data/<name>/1.0.0`: the folder `tfds.builder_from_directory` is given."""
    return Examples(root).path(Examples.DATA, dataset_name, DATASET_VERSION)


def shard_name(dataset_name: str, split: str, index: int, count: int) -> str:
    return f"{dataset_name}-{split}.tfrecord-{index:05d}-of-{count:05d}"


class _Records:
    """Copies framed records by offset from the inspection's bundle files, keeping each file open once.

    On a local disk the kernel copies (`os.copy_file_range`: no pass through Python's buffers, and a
    reflink on filesystems that share blocks); elsewhere, or where the kernel refuses, bytes are
    read and written.
    """

    def __init__(self):
        self._open = {}
        self._kernel_copy = hasattr(os, "copy_file_range")

    def copy(self, row: dict, out) -> None:
        """Append `row`'s record to the open shard file `out`."""
        f = self._open.get(row["file"])
        if f is None:
            f = self._open[row["file"]] = fileio.GFile(row["file"], "rb")
        if row.get("stored_label", row["label"]) != row["label"]:
            return self._relabel(f, row, out)
        if self._kernel_copy and "://" not in row["file"] and hasattr(out, "fileno"):
            try:
                return self._copy_range(f, out, row)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                self._kernel_copy = False  # e.g. another filesystem on an old kernel: copy by hand
        f.seek(row["offset"])
        data = f.read(row["length"])
        if len(data) != row["length"]:
            raise RuntimeError(f"record of {row['relpath']!r} is cut short in {row['file']} (a bug, or the disk)")
        out.write(data)

    @staticmethod
    def _relabel(f, row: dict, out) -> None:
        """Write a reused record again with the label index of this ingest's class list (a class was
        added or removed before it in sorted order); `row["length"]` becomes the new record's."""
        from tensorflow.core.example import example_pb2

        f.seek(row["offset"])
        framed = f.read(row["length"])
        if len(framed) != row["length"]:
            raise RuntimeError(f"record of {row['relpath']!r} is cut short in {row['file']} (a bug, or the disk)")
        features = example_pb2.Example.FromString(framed[12:-4]).features.feature
        values = {
            name: (feature.bytes_list.value[0] if feature.HasField("bytes_list") else feature.int64_list.value[0])
            for name, feature in features.items()
        }
        row["length"] = records.write_record(out, records.serialize_example({**values, "label": row["label"]}))
        out.flush()  # before the next record, which the kernel may copy straight to the file descriptor

    @staticmethod
    def _copy_range(f, out, row) -> None:
        offset, left = row["offset"], row["length"]
        while left:
            done = os.copy_file_range(f.fileno(), out.fileno(), left, offset)
            if done == 0:
                raise RuntimeError(f"record of {row['relpath']!r} is cut short in {row['file']} (a bug, or the disk)")
            offset, left = offset + done, left - done

    def close(self):
        for f in self._open.values():
            f.close()


def write_shards(
    kept: List[dict], out_dir: str, dataset_name: str, split_names: Sequence[str], shard_bytes: int
) -> Dict[str, dict]:
    """Copy every kept record into its split's TFDS-named shards; return {split: {shard_lengths, num_bytes}}.

    Records are framed already (`row["file"]`, `["offset"]`, `["length"]`), so this is a byte copy.
    A split gets ceil(bytes / shard_bytes) shards of about equal size (one at least, an empty file
    for an empty split), filled in `kept`'s order (by path): the shards are the same bytes whatever
    the number of workers or bundles that inspected the files.
    """
    fileio.makedirs(out_dir)
    source, result = _Records(), {}
    try:
        for split in split_names:
            rows = [r for r in kept if r["split"] == split]
            total = sum(r["length"] for r in rows)
            count = max(1, math.ceil(total / shard_bytes))
            lengths, done, next_row = [0] * count, 0, 0
            for index in range(count):
                name = shard_name(dataset_name, split, index, count)
                with fileio.GFile(os.path.join(out_dir, name), "wb") as out:
                    offset = 0
                    while next_row < len(rows) and (index == count - 1 or done < total * (index + 1) / count):
                        row = rows[next_row]
                        source.copy(row, out)
                        row.update(shard=name, shard_offset=offset)  # where the next ingest finds it (inventory.csv)
                        offset += row["length"]
                        lengths[index] += 1
                        done += row["length"]
                        next_row += 1
            result[split] = {"shard_lengths": lengths, "num_bytes": total}
    finally:
        source.close()
    return result


def write_tfds_metadata(
    out_dir: str, dataset_name: str, labels: Sequence[str], shards: Dict[str, dict], description: str
) -> None:
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
    write_text_atomic(
        out.path(Examples.MANIFEST), _csv_text(MANIFEST_FIELDS, [{**r, "path": r["relpath"]} for r in kept])
    )
    write_text_atomic(
        out.path(Examples.REJECTED), _csv_text(REJECTED_FIELDS, [{**r, "path": r["relpath"]} for r in rejected])
    )


def write_inventory(root: str, kept: List[dict], rejected: List[dict]) -> None:
    """inventory.csv: every file this ingest decoded, as it was read (size, modification time), with
    where a kept one's record is in the shards or why a rejected one was; what the next ingest
    reuses (components/ingest/reuse.py)."""
    rows = [
        {**r, "path": r["relpath"], "size": r["stamp"][0], "mtime": r["stamp"][1], "offset": r.get("shard_offset")}
        for r in [*kept, *rejected]
    ]
    write_text_atomic(Examples(root).path(Examples.INVENTORY), _csv_text(INVENTORY_FIELDS, rows))


def read_previous_splits(previous_dir: str) -> Dict[str, str]:
    """sha256 -> split of every image in an earlier ingest's manifest.csv."""
    previous = Examples(previous_dir)
    if not previous.exists(Examples.MANIFEST):
        raise DataError(
            f"previous ingest {previous_dir!r} has no manifest.csv, so the splits of known images "
            "cannot be kept: point at a complete ingest output, or run without a previous ingest"
        )
    return {row["sha256"]: row["split"] for row in previous.manifest()}


def write_stats(root: str, stats: dict) -> None:
    write_json(Examples(root).path(Examples.STATS), stats)
