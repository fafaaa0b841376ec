"""The Beam steps of the ingest. Each file is read once, and its bytes never leave that worker.

    candidates | InspectFiles   read + sha256 + full decode; a usable image's tf.Example goes into
                                this bundle's own TFRecord file; emit small metadata (where it is)
    then, in the driver, `plan`: dedupe, label conflicts, stable stratified splits (metadata only)

Grouping image bytes (as `WriteToTFRecord(num_shards=N)` does) holds the whole dataset in memory
on the DirectRunner, and shipping bytes between the runner and its worker processes costs more
than it saves; so the only grouped data is the per-file metadata (~250 bytes an image). Which
split an image goes to is known only once every file is inspected, so the driver then copies
each kept record, by its offset, from the bundle files into its split's shards
(`outputs.write_shards`): a sequential copy, not a second read, hash and decode of the originals.
A file that changes after it was read is caught by comparing its size and modification time.
"""

import collections
import hashlib
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from components.ingest import decode, records, splits
from components.ingest.config import IngestConfig

COUNTER_NAMESPACE = "ingest"
PROGRESS_SECONDS = 10.0
BATCH_FILES = 32  # files per element: enough to hide Beam's per-element cost, many batches per worker


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


def stamp(path: str) -> list:
    """[size, modification time] of a file now; compared after the ingest to catch files that changed."""
    if "://" not in path:
        info = os.stat(path)
        return [info.st_size, info.st_mtime_ns]
    meta = FileSystems.metadata(path)
    return [meta.size_in_bytes, meta.last_updated_in_seconds]


def _inspect(candidate, min_side: int, max_pixels: int, max_side) -> tuple:
    """Read, hash and fully decode one file: (metadata row, bytes to store or None when rejected).

    Pure (no Beam state), so that it can run on a worker's threads."""
    path, relpath, label_text = candidate
    row = {"path": path, "relpath": relpath, "label_text": label_text}
    try:
        row["stamp"] = stamp(path)
        data = _read(path)
    except Exception as e:  # noqa: BLE001 - any I/O failure of one file rejects that file only
        detail = f"cannot read the file ({e}): check its permissions"
        return {**row, "reason": decode.UNREADABLE, "detail": detail}, None
    result = decode.decode_and_normalise(data, min_side, max_pixels, max_side)
    row["sha256"] = hashlib.sha256(data).hexdigest()
    if isinstance(result, decode.Rejected):
        return {**row, "reason": result.reason, "detail": result.detail}, None
    row.update(
        format=result.format,
        height=result.height,
        width=result.width,
        bytes=len(result.data),
        normalised=result.normalised,
    )
    return row, result.data


class _InspectBatch(beam.DoFn):
    """Inspect a batch of files (`_inspect`) on `threads` threads; write each usable image's tf.Example
    to this bundle's file, in this bundle's thread (Beam's counters and the file belong to it).

    Emits one list per batch: each file's metadata (never its bytes), with where its record is:
    {"file", "offset", "length"} of the framed record. Batches keep Beam's per-element cost (a
    fraction of a millisecond, as much as hashing a photo) off every file; at most 2 x threads files
    are in flight, so memory stays flat whatever the batch or image size. Every PROGRESS_SECONDS a
    worker prints how many files it has inspected, so a long ingest shows it is moving (one plain
    line each time: readable in a cron log).
    """

    def __init__(self, config: IngestConfig, labels: Sequence[str], work_dir: str, total: int):
        self._limits = (config.min_side, config.max_pixels, config.max_side)
        self._threads = config.threads
        self._labels = {name: i for i, name in enumerate(labels)}
        self._work_dir = work_dir
        self._total = total

    def setup(self):
        self._read_counter = Metrics.counter(COUNTER_NAMESPACE, "files_read")
        self._inspected = 0
        self._last_report = time.monotonic()
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # Linux / else
        threads = self._threads or usable
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="inspect") if threads > 1 else None
        self._window = 2 * threads

    def teardown(self):
        if self._pool is not None:
            self._pool.shutdown()

    def start_bundle(self):
        self._file, self._path, self._offset = None, None, 0

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()  # before the bundle commits: the driver reads it once the pipeline is done
            self._file = None

    def process(self, batch):
        if self._pool is None:
            yield [self._record(*_inspect(candidate, *self._limits)) for candidate in batch]
            return
        rows, pending = [], collections.deque()
        for candidate in batch:
            pending.append(self._pool.submit(_inspect, candidate, *self._limits))
            if len(pending) >= self._window:
                rows.append(self._record(*pending.popleft().result()))
        rows.extend(self._record(*future.result()) for future in pending)
        yield rows

    def _record(self, row: dict, data) -> dict:
        """Count, report progress and write the record of one inspected file; return its metadata."""
        self._inspected += 1
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_SECONDS:
            print(f"[ingest] inspecting: {self._inspected} of {self._total} files done by this worker", flush=True)
            self._last_report = now
        if row.get("reason") != decode.UNREADABLE:
            self._read_counter.inc()
        if data is None:
            Metrics.counter(COUNTER_NAMESPACE, f"rejected_{row['reason']}").inc()
            return row
        row["label"] = self._labels[row["label_text"]]
        if self._file is None:
            self._path = FileSystems.join(self._work_dir, f"{uuid.uuid4().hex}.tfrecord")
            self._file = FileSystems.create(self._path, compression_type="uncompressed")
        length = records.write_record(self._file, _example(row, data))
        row.update(file=self._path, offset=self._offset, length=length)
        self._offset += length
        return row


class InspectFiles(beam.PTransform):
    """Batches of (path, relpath, label_text) -> one list of metadata dicts per batch, one dict per
    file, kept or with a reject reason.

    config: supplies the decode limits (min_side, max_pixels, max_side) and the threads per worker.
    labels: the class names in label order (a record holds its label's index).
    work_dir: where the bundle files go (inside the ingest's temporary output).
    total: how many files there are (for the progress lines).
    """

    def __init__(self, config: IngestConfig, labels: Sequence[str], work_dir: str, total: int):
        super().__init__()
        self._inspect = _InspectBatch(config, labels, work_dir, total)

    def expand(self, batches):
        return batches | "Spread" >> beam.Reshuffle() | "ReadHashDecodeWrite" >> beam.ParDo(self._inspect)


def batches(candidates: Sequence, size: int = BATCH_FILES) -> List[list]:
    """`candidates` in lists of `size` (the unit of work a worker takes)."""
    return [list(candidates[i : i + size]) for i in range(0, len(candidates), size)]


def plan(
    batches: List[List[dict]],
    labels: Sequence[str],
    previous: Mapping[str, str],
    config: IngestConfig,
    reused: Sequence[dict] = (),
    given: Optional[Mapping[str, str]] = None,
) -> dict:
    """Decide, from metadata only (one list of rows per inspected batch, and the rows `reused` from an
    earlier ingest), which files are kept and in which split.

    Duplicates (same sha256 twice in one class) keep the copy with the smallest path; content
    found in two classes is a label conflict and every copy is rejected. `given`: {relpath: split}
    a manifest gave, kept exactly (the split memory and quotas place the other images). Returns
    {"kept": [row + label + split], "rejected": [row with reason/detail], "inspection": counts}, where
    the counts (`files_read`, `rejected_<reason>` at inspection) are the ones the inspecting DoFn
    also reports as Beam counters: computed here from the pipeline's output because not every
    runner has metrics (DaskRunner raises), so the counters are for runner UIs only.
    """
    given = given or {}
    rows = [row for batch in batches for row in batch]
    inspection = collections.Counter(f"rejected_{r['reason']}" for r in rows if "reason" in r)
    inspection["files_read"] = sum(r.get("reason") != decode.UNREADABLE for r in rows)
    rows += reused
    rejected = [r for r in rows if "reason" in r]
    decoded = sorted((r for r in rows if "reason" not in r), key=lambda r: r["relpath"])
    by_sha: Dict[str, List[dict]] = {}
    for row in decoded:
        by_sha.setdefault(row["sha256"], []).append(row)
    kept_by_class: Dict[str, List[dict]] = {}
    for sha, copies in by_sha.items():
        classes = sorted({r["label_text"] for r in copies})
        if len(classes) > 1:
            for r in copies:
                others = ", ".join(repr(c) for c in classes if c != r["label_text"])
                rejected.append(
                    {
                        **r,
                        "reason": decode.LABEL_CONFLICT,
                        "detail": f"the same image is also in class {others}: keep it in one class only",
                    }
                )
            continue
        first, *dupes = copies
        for r in dupes:
            rejected.append(
                {**r, "reason": decode.DUPLICATE, "detail": f"same content as {first['relpath']!r} (that copy is kept)"}
            )
        kept_by_class.setdefault(first["label_text"], []).append(first)
    label_index = {name: i for i, name in enumerate(labels)}
    kept = []
    for label_text, class_rows in sorted(kept_by_class.items()):
        fixed = {r["sha256"]: given[r["relpath"]] for r in class_rows if r["relpath"] in given}
        split_of = splits.assign_class(
            (r["sha256"] for r in class_rows),
            {**previous, **fixed},
            config.splits,
            config.split_names,
            config.split_seed,
        )
        for r in class_rows:
            kept.append(
                {
                    **r,
                    "label": label_index[label_text],
                    "split": split_of[r["sha256"]],
                    "split_source": "given" if r["relpath"] in given else "rule",
                }
            )
    kept.sort(key=lambda r: r["relpath"])
    rejected.sort(key=lambda r: r["relpath"])
    return {"kept": kept, "rejected": rejected, "inspection": dict(sorted(inspection.items()))}


def _example(row: dict, data: bytes) -> bytes:
    """The tf.Example of one kept image: the features of schemas/image_example.pbtxt."""
    return records.serialize_example(
        {
            "image": data,
            "format": row["format"].encode(),
            "height": row["height"],
            "width": row["width"],
            "label": row["label"],
            "label_text": row["label_text"].encode(),
            "filename": row["relpath"].encode(),
            "sha256": row["sha256"].encode(),
        }
    )


def save_json(value, path: str) -> None:
    """Hand a small result (metadata, never image bytes) from the pipeline back to the driver."""
    with FileSystems.create(path, mime_type="application/json", compression_type="uncompressed") as f:
        f.write(json.dumps(value).encode())
