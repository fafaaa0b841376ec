"""`train.exclude`: images left out of training, named by content in a CSV's `sha256` column.

The audit's `label_issues.csv` has that column, so the loop the audit is for is: review the queue
(delete the rows whose given label is right), then train with `train.exclude` pointing at what is
left. Images are named by their content hash, not their path, so the list stays valid when files
are renamed or moved between class folders, and a relabelled file (its path changes, its bytes
do not) is excluded wherever it now sits. Only the train split shrinks: val and test stay whole,
so accuracies stay comparable with a run that excluded nothing. `pipeline.run` fingerprints the
file's content, so editing it retrains.
"""

import csv
import hashlib
import io

from components.common import fileio
from components.common.errors import UsageError


def read_bytes(path: str) -> bytes:
    """The file's bytes; UsageError (exit 2) naming it when it cannot be read."""
    try:
        with fileio.GFile(path, "rb") as f:
            return f.read()
    except fileio.errors() as e:
        raise UsageError(
            f"train.exclude={path}: cannot read it ({getattr(e, 'message', e)}); give a CSV with a "
            "sha256 column, such as an audit's label_issues.csv, or leave train.exclude empty"
        ) from None


def digest(path: str) -> str:
    """sha256 of the file's content (what `pipeline.run` fingerprints)."""
    return hashlib.sha256(read_bytes(path)).hexdigest()


def read(path: str) -> frozenset:
    """The sha256 values the CSV at `path` lists; UsageError when it has no sha256 column or a bad value."""
    text = read_bytes(path).decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    if "sha256" not in (reader.fieldnames or []):
        raise UsageError(
            f"train.exclude={path}: no 'sha256' column (columns: {reader.fieldnames or 'none'}); "
            "give a CSV with a sha256 column, such as an audit's label_issues.csv"
        )
    values = set()
    for line, row in enumerate(reader, start=2):
        value = (row["sha256"] or "").strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise UsageError(f"train.exclude={path}, line {line}: {row['sha256']!r} is not a sha256 (64 hex digits)")
        values.add(value)
    return frozenset(values)
