"""Labels from a file instead of folders: a manifest's rows become the ingest's candidates.

Three formats, told apart by the file's name and its rows:

- CSV (`*.csv`) with a header naming `path` and `label`, and optionally `split`;
- JSON Lines in Vertex AI's image classification import schema (`imageGcsUri`,
  `classificationAnnotation.displayName`, and `dataItemResourceLabels`
  `aiplatform.googleapis.com/ml_use`: training, validation or test);
- JSON Lines as Hugging Face's `imagefolder` `metadata.jsonl` (`file_name`, `label`, optionally
  `split`).

A relative path is read from the manifest's folder and must stay inside it (`..` that leaves it is
refused: a manifest shared with others must not read files beside it); an absolute path or a URI of
any Beam filesystem is taken as given (and recorded relative to the manifest's folder when inside it,
so the same images give the same records whichever way they are named). A row's `split` (train / val / test, or Vertex's
training / validation / test) is kept exactly; rows without one are split by the stratified, stable
rule as image folders are (components/ingest/splits.py).

Every row is accounted for, as every file of a folder is: a candidate, or rejected with a reason
(`rejected.csv`): `missing` (no such local file), `bad_row` (not UTF-8, longer than
MAX_LINE_BYTES, unparseable, no path, a path leaving the folder, an unknown split), `bad_label` (no
label, or one that is blank or holds control characters), `duplicate_row` (the same path and label
again: the first is kept) and `row_conflict` (the same path with different labels, or different
splits: every such row). Blank lines are ignored and counted. A remote file that does not exist is
rejected by the inspection as `unreadable`, as in a folder. The same image content under two labels
(two paths) is the plan's `label_conflict`, as for folders.
"""

import csv
import io
import json
import os
import posixpath
import unicodedata

from components.common import fileio
from components.common.errors import DataError
from components.ingest.scan import Candidate, ScanResult
from schemas import reasons

MAX_LINE_BYTES = 64 * 1024  # a row longer than this is refused unread (a 10 MB line is no row)
ML_USE = "aiplatform.googleapis.com/ml_use"
VERTEX_SPLITS = {"training": "train", "validation": "val", "test": "test"}
SPLITS = ("train", "val", "test")
IGNORED_BLANK = "blank_line"


class _Refused(Exception):
    """A row refused with (reason, detail)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def folder(manifest: str) -> str:
    """The folder a manifest's relative paths are read from: its own."""
    return manifest.rsplit("/", 1)[0] if "://" in manifest else os.path.dirname(os.path.abspath(manifest))


def _lines(manifest: str):
    """(line number, raw bytes) of every line: read as bytes so one bad line cannot hide the others."""
    try:
        with fileio.GFile(manifest, "rb") as f:
            data = f.read()
    except fileio.errors() as e:
        raise DataError(f"manifest {manifest!r} cannot be read ({e}): check --manifest / ingest.manifest") from None
    lines = data.split(b"\n")
    if lines and not lines[-1]:  # the newline that ends the last line starts no line
        lines.pop()
    for number, line in enumerate(lines, 1):
        yield number, line.rstrip(b"\r")


def _text(raw: bytes) -> str:
    if len(raw) > MAX_LINE_BYTES:
        raise _Refused(reasons.BAD_ROW, f"a line of {len(raw):,} bytes, over {MAX_LINE_BYTES:,}: not a manifest row")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Refused(reasons.BAD_ROW, f"not UTF-8 ({e.reason} at byte {e.start})") from None


def _csv_rows(lines):
    """(line number, {path, label, split} or _Refused) of a CSV manifest; the header names the columns."""
    header = None
    for number, raw in lines:
        if not raw.strip():
            yield number, None
            continue
        try:
            cells = next(csv.reader(io.StringIO(_text(raw))))
        except _Refused as refused:
            yield number, refused
            continue
        except csv.Error as e:
            yield number, _Refused(reasons.BAD_ROW, f"not a CSV row ({e})")
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            if "path" not in header or "label" not in header:
                raise DataError(
                    f"manifest header {cells!r}: a CSV manifest's first line names its columns, among them "
                    "`path` and `label` (and optionally `split`), e.g. path,label,split"
                )
            continue
        if len(cells) != len(header):
            yield number, _Refused(reasons.BAD_ROW, f"{len(cells)} cells, the header names {len(header)}")
            continue
        row = dict(zip(header, cells))
        yield number, {"path": row["path"], "label": row["label"], "split": row.get("split") or None}


def _json_rows(lines):
    """(line number, {path, label, split} or _Refused) of a Vertex or Hugging Face JSON Lines manifest."""
    for number, raw in lines:
        if not raw.strip():
            yield number, None
            continue
        try:
            item = json.loads(_text(raw))
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except _Refused as refused:
            yield number, refused
            continue
        except ValueError as e:
            yield number, _Refused(reasons.BAD_ROW, f"not a JSON object ({str(e)[:80]})")
            continue
        if "imageGcsUri" in item:  # Vertex AI's import schema
            annotation = item.get("classificationAnnotation") or {}
            use = (item.get("dataItemResourceLabels") or {}).get(ML_USE)
            split = VERTEX_SPLITS.get(use, use)
            yield number, {"path": item["imageGcsUri"], "label": annotation.get("displayName"), "split": split}
        elif "file_name" in item:  # Hugging Face imagefolder's metadata.jsonl
            yield number, {"path": item["file_name"], "label": item.get("label"), "split": item.get("split")}
        else:
            yield number, _Refused(reasons.BAD_ROW, "no `imageGcsUri` (Vertex AI) or `file_name` (Hugging Face)")


def _resolve(folder: str, path) -> tuple:
    """(full path, relpath recorded for it) of a row's path; _Refused when unusable."""
    if not isinstance(path, str) or not path.strip():
        raise _Refused(reasons.BAD_ROW, "no path")
    if "://" in path or os.path.isabs(path):
        inside = folder.rstrip("/") + "/"
        # under the manifest's folder: recorded relative to it, as the same file in a class folder is
        return path, path[len(inside) :] if path.startswith(inside) else path
    relpath = posixpath.normpath(path.replace("\\", "/"))
    if relpath.startswith("../") or relpath == "..":
        raise _Refused(reasons.BAD_ROW, f"path {path!r} leaves the manifest's folder: give it inside, or absolute")
    full = f"{folder.rstrip('/')}/{relpath}" if "://" in folder else os.path.join(folder, relpath)
    return full, relpath


def _label(label) -> str:
    if not isinstance(label, str) or not label.strip():
        raise _Refused(reasons.BAD_LABEL, "no label")
    if label != label.strip() or any(unicodedata.category(c).startswith("C") for c in label):
        raise _Refused(reasons.BAD_LABEL, f"label {label!r} starts or ends with spaces or holds control characters")
    return label


def _split(split, allowed: tuple):
    if split in (None, ""):
        return None
    if split not in allowed:
        raise _Refused(reasons.BAD_ROW, f"split {split!r}: give one of {', '.join(allowed)} (or none)")
    return split


def scan_manifest(manifest: str, split_names: tuple = SPLITS) -> ScanResult:
    """The candidates of `manifest` (each with its given split, or None) and every other row's fate.

    relpath of a refused row without a usable path: `MANIFEST_NAME:LINE`."""
    base, name = folder(manifest), posixpath.basename(manifest.rstrip("/"))
    parse = _csv_rows if manifest.lower().endswith(".csv") else _json_rows
    result = ScanResult(candidates=[], ignored=[], rejected=[])
    rows = {}  # relpath -> [(line, full path, label, split)]
    for number, row in parse(_lines(manifest)):
        where = f"{name}:{number}"
        if row is None:
            if number > 1 or parse is _json_rows:
                result.ignored.append((where, IGNORED_BLANK))
            continue
        try:
            if isinstance(row, _Refused):
                raise row
            full, relpath = _resolve(base, row["path"])
            where = relpath
            label, split = _label(row["label"]), _split(row["split"], split_names)
        except _Refused as refused:
            result.rejected.append((where, refused.reason, f"{name} line {number}: {refused.detail}"))
            continue
        rows.setdefault(relpath, []).append((number, full, label, split))
    for relpath, same in rows.items():
        versions = {(label, split) for _, _, label, split in same}
        if len(versions) > 1:
            detail = "; ".join(
                f"line {n}: {label!r}" + (f" in {split}" if split else "") for n, _, label, split in same
            )
            result.rejected += [(relpath, reasons.ROW_CONFLICT, f"{name}: {detail}") for _ in same]
            continue
        (number, full, label, split), *again = same
        result.rejected += [
            (relpath, reasons.DUPLICATE_ROW, f"{name} line {n}: the same row as line {number} (that one is kept)")
            for n, *_ in again
        ]
        if "://" not in full and not os.path.exists(full):
            result.rejected.append((relpath, reasons.MISSING, f"{name} line {number}: no file {full}"))
            continue
        result.candidates.append(Candidate(full, relpath, label, split))
        result.seen.append((relpath, full))
    result.candidates.sort(key=lambda c: c.relpath)
    return result


def check(manifest: str, named: str = "--manifest") -> None:
    """DataError when the manifest is missing or a folder (the cheap check, before anything runs)."""
    if not fileio.exists(manifest):
        raise DataError(f"manifest {manifest!r} does not exist: check {named}")
    if fileio.isdir(manifest):
        raise DataError(f"{named} {manifest!r} is a folder: give the manifest file (.csv or .jsonl)")
