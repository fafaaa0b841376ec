"""The Beam steps of the ingest. Image bytes never leave the worker that read them.

    candidates | InspectFiles        read + sha256 + full decode in the worker; emit small metadata
               | PlanSplits          dedupe, label conflicts, stable stratified splits (metadata only)
               | WriteExamples       re-read each kept file, write tf.Examples, one file per bundle

Grouping image bytes (as `WriteToTFRecord(num_shards=N)` does) holds the whole dataset in memory
on the DirectRunner, and shipping bytes between the runner and its worker processes costs more
than it saves; so the only grouped data is the per-file metadata (~200 bytes an image), and the
examples are written by a DoFn that opens its own TFRecord files per bundle. The driver then
packs those files into TFDS-named shards (`outputs.finalise_shards`).
"""
import hashlib
import json
import time
import uuid
from typing import Dict, List, Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from components.ingest import decode, records, splits
from components.ingest.config import IngestConfig

COUNTER_NAMESPACE = "ingest"
PROGRESS_SECONDS = 10.0


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


class _InspectFile(beam.DoFn):
    """Read, hash and fully decode one file; emit its metadata (never its bytes).

    Every PROGRESS_SECONDS a worker prints how many files it has inspected, so a long ingest shows
    it is moving (one plain line each time: readable in a cron log).
    """

    def __init__(self, config: IngestConfig, total: int):
        self._min_side = config.min_side
        self._max_pixels = config.max_pixels
        self._max_side = config.max_side
        self._total = total

    def setup(self):
        self._read_counter = Metrics.counter(COUNTER_NAMESPACE, "files_read")
        self._inspected = 0
        self._last_report = time.monotonic()

    def _report_progress(self):
        self._inspected += 1
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_SECONDS:
            print(f"[ingest] inspecting: {self._inspected} of {self._total} files done by this worker", flush=True)
            self._last_report = now

    def process(self, candidate):
        self._report_progress()
        path, relpath, label_text = candidate
        row = {"path": path, "relpath": relpath, "label_text": label_text}
        try:
            data = _read(path)
        except Exception as e:  # noqa: BLE001 - any I/O failure of one file rejects that file only
            Metrics.counter(COUNTER_NAMESPACE, f"rejected_{decode.UNREADABLE}").inc()
            yield {**row, "reason": decode.UNREADABLE, "detail": f"cannot read the file ({e}): check its permissions"}
            return
        self._read_counter.inc()
        result = decode.decode_and_normalise(data, self._min_side, self._max_pixels, self._max_side)
        row["sha256"] = hashlib.sha256(data).hexdigest()
        if isinstance(result, decode.Rejected):
            Metrics.counter(COUNTER_NAMESPACE, f"rejected_{result.reason}").inc()
            yield {**row, "reason": result.reason, "detail": result.detail}
            return
        yield {
            **row,
            "format": result.format,
            "height": result.height,
            "width": result.width,
            "bytes": len(result.data),
            "normalised": result.normalised,
        }


class InspectFiles(beam.PTransform):
    """(path, relpath, label_text) tuples -> one metadata dict per file, kept or with a reject reason.

    config: supplies the decode limits (min_side, max_pixels, max_side).
    total: how many files there are (for the progress lines).
    """

    def __init__(self, config: IngestConfig, total: int):
        super().__init__()
        self._config = config
        self._total = total

    def expand(self, candidates):
        inspect = _InspectFile(self._config, self._total)
        return candidates | "Spread" >> beam.Reshuffle() | "ReadHashDecode" >> beam.ParDo(inspect)


def plan(rows: List[dict], labels: Sequence[str], previous: Mapping[str, str], config: IngestConfig) -> dict:
    """Decide, from metadata only, which files are kept and in which split.

    Duplicates (same sha256 twice in one class) keep the copy with the smallest path; content
    found in two classes is a label conflict and every copy is rejected. Returns
    {"kept": [row + label + split], "rejected": [row with reason/detail]}.
    """
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
                rejected.append({**r, "reason": decode.LABEL_CONFLICT,
                                 "detail": f"the same image is also in class {others}: keep it in one class only"})
            continue
        first, *dupes = copies
        for r in dupes:
            rejected.append({**r, "reason": decode.DUPLICATE,
                             "detail": f"same content as {first['relpath']!r} (that copy is kept)"})
        kept_by_class.setdefault(first["label_text"], []).append(first)
    label_index = {name: i for i, name in enumerate(labels)}
    kept = []
    for label_text, class_rows in sorted(kept_by_class.items()):
        split_of = splits.assign_class(
            (r["sha256"] for r in class_rows), previous, config.splits, config.split_names, config.split_seed
        )
        for r in class_rows:
            kept.append({**r, "label": label_index[label_text], "split": split_of[r["sha256"]]})
    kept.sort(key=lambda r: r["relpath"])
    rejected.sort(key=lambda r: r["relpath"])
    return {"kept": kept, "rejected": rejected}


class _WriteBundleFiles(beam.DoFn):
    """Write each kept image as a tf.Example into this bundle's own TFRecord file per split.

    A file is closed and a new one opened once it reaches `shard_bytes`, so no file outgrows a
    shard; each closed file is emitted as {"split", "path", "count", "bytes"}. A file whose
    content changed since it was inspected, or that is gone, is emitted as {"changed": relpath}
    and not written (the driver then stops with exit 3).
    """

    def __init__(self, work_dir: str, config: IngestConfig):
        self._work_dir = work_dir
        self._shard_bytes = config.shard_bytes
        self._min_side = config.min_side
        self._max_pixels = config.max_pixels
        self._max_side = config.max_side

    def start_bundle(self):
        self._open: Dict[str, dict] = {}
        self._closed: List[dict] = []

    def process(self, row):
        try:
            data = _read(row["path"])
        except OSError:  # deleted, or replaced by a folder, since it was inspected
            yield {"changed": row["relpath"]}
            return
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            yield {"changed": row["relpath"]}  # the driver stops the run with a DataError
            return
        if row["normalised"]:
            data = decode.decode_and_normalise(data, self._min_side, self._max_pixels, self._max_side).data
        current = self._open.get(row["split"])
        if current is None:
            path = FileSystems.join(self._work_dir, f"{row['split']}-{uuid.uuid4().hex}.tfrecord")
            current = {"split": row["split"], "path": path, "count": 0, "bytes": 0,
                       "file": FileSystems.create(path, compression_type="uncompressed")}
            self._open[row["split"]] = current
        current["bytes"] += records.write_record(current["file"], _example(row, data))
        current["count"] += 1
        Metrics.counter(COUNTER_NAMESPACE, f"written_{row['split']}").inc()
        if current["bytes"] >= self._shard_bytes:
            self._close(row["split"])

    def _close(self, split: str) -> None:
        current = self._open.pop(split)
        current.pop("file").close()
        self._closed.append(current)

    def finish_bundle(self):
        for split in list(self._open):
            self._close(split)
        for info in self._closed:
            yield WindowedValue(info, GlobalWindow().max_timestamp(), [GlobalWindow()])


def _example(row: dict, data: bytes) -> bytes:
    """The tf.Example of one kept image: the features of schemas/image_example.pbtxt."""
    return records.serialize_example({
        "image": data,
        "format": row["format"].encode(),
        "height": row["height"],
        "width": row["width"],
        "label": row["label"],
        "label_text": row["label_text"].encode(),
        "filename": row["relpath"].encode(),
        "sha256": row["sha256"].encode(),
    })


class WriteExamples(beam.PTransform):
    """Kept rows (with label and split) -> info dicts of the TFRecord files written under work_dir.

    work_dir: a folder inside the ingest's temporary output, on the same filesystem as the shards.
    config: supplies shard_bytes and, for images that were normalised, the decode limits.
    """

    def __init__(self, work_dir: str, config: IngestConfig):
        super().__init__()
        self._work_dir = work_dir
        self._config = config

    def expand(self, kept):
        return (
            kept
            | "Spread" >> beam.Reshuffle()
            | "ReadAndWriteTFRecords" >> beam.ParDo(_WriteBundleFiles(self._work_dir, self._config))
        )



def kept_rows(planned: dict) -> List[dict]:
    """The kept images of a plan, one element each, for the writing step."""
    return planned["kept"]


def save_json(value, path: str) -> None:
    """Hand a small result (metadata, never image bytes) from the pipeline back to the driver."""
    with FileSystems.create(path, mime_type="application/json", compression_type="uncompressed") as f:
        f.write(json.dumps(value).encode())
