"""The nightly rerun: an earlier ingest's work reused for the files that have not changed since.

A file whose relative path (so its class), size and modification time are what the earlier ingest's
inventory.csv recorded is not read, hashed or decoded again: a kept one's record is copied from the
earlier shards by offset (as the inspection's own bundle files are, by the kernel on a local disk),
a rejected one keeps its verdict. New and changed files go through the inspection as on a first run;
removed files are simply not listed, so they leave every split. The plan (duplicates, label
conflicts, split memory) then runs over all of them together, so the output is the same set of
records, in the same splits and shards, as a full re-ingest of the folder with the same split
memory would write, and it is self-contained: deleting the earlier ingest afterwards breaks nothing.

Not reused: files that could not be read (they are retried), duplicates and label conflicts (their
records were never written; the plan decides again once they are inspected), and anything from an
ingest whose decoding differs (the driver passes `reuse` only when the decode settings and the
ingest's code are those of the earlier run).
"""

import os
from typing import List, Tuple

from components.ingest import decode, transforms
from components.ingest.outputs import dataset_dir
from schemas.artifacts import Examples

# Verdicts decided per file at inspection (so reusable); the plan's and unreadable ones are not.
_NOT_REUSED = {decode.UNREADABLE, decode.DUPLICATE, decode.LABEL_CONFLICT}


def partition(candidates: list, previous_dir: str, dataset_name: str) -> Tuple[List[dict], list]:
    """(rows reused from `previous_dir`, the candidates to inspect): see the module docstring.

    candidates: scan.Candidate-like objects (path, relpath, label_text). A reused kept row points at
    its record in the earlier shards (`file`, `offset`, `length`) and remembers the label index it
    was written with (`stored_label`), so that a changed class list rewrites it
    (outputs._Records)."""
    known = {row["path"]: row for row in Examples(previous_dir).inventory()}
    if not known:
        return [], list(candidates)
    shards_dir = dataset_dir(previous_dir, dataset_name)
    reused, fresh = [], []
    for candidate in candidates:
        row = known.get(candidate.relpath)
        try:
            now = transforms.stamp(candidate.path)
        except OSError:  # vanished or unreadable: the inspection reports it
            now = None
        if (
            row is None
            or row["label_text"] != candidate.label_text
            or now is None
            or [str(v) for v in now]
            != [
                row["size"],
                row["mtime"],
            ]
        ):
            fresh.append(candidate)
            continue
        base = {"path": candidate.path, "relpath": candidate.relpath, "label_text": candidate.label_text}
        base.update(stamp=now, sha256=row["sha256"])
        if row["reason"]:
            if row["reason"] in _NOT_REUSED:
                fresh.append(candidate)
            else:
                reused.append({**base, "reason": row["reason"], "detail": row["detail"]})
            continue
        reused.append(
            {
                **base,
                "format": row["format"],
                "height": int(row["height"]),
                "width": int(row["width"]),
                "bytes": int(row["bytes"]),
                "file": os.path.join(shards_dir, row["shard"]),
                "offset": int(row["offset"]),
                "length": int(row["length"]),
                "stored_label": int(row["label"]),
            }
        )
    return reused, fresh


def inventoried_rejections(rejected: List[dict]) -> List[dict]:
    """The rejected rows the next ingest may reuse: decoded, and judged by the file alone."""
    return [row for row in rejected if row.get("sha256") and row.get("stamp") and row["reason"] not in _NOT_REUSED]
