"""Write-to-temporary-then-rename publishing, so no reader ever sees a half-written artifact.

Paths go through `components.common.fileio` so that the same code publishes to local disk and to
object stores. Readers take a directory as published only when its completion marker is there
(`is_complete`, and `Artifact.is_complete` in schemas/artifacts.py), so the marker is the commit point. On a local filesystem `rename` of a
directory is atomic, and the marker is written into the temporary directory before the rename; on
object stores a directory rename copies object by object, so the marker is written into the final
directory after every other file has arrived (a reader meanwhile sees an incomplete directory,
never a marked one with files missing).
"""

import contextlib
import json
import os
import uuid

from components.common import fileio


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename inside the local directory `path` durable (object stores need nothing)."""
    if "://" not in path:
        _fsync(path)


def _fsync_tree(path: str) -> None:
    """Flush a local directory tree to disk before it is renamed into place."""
    if "://" in path:
        return
    for root, _dirs, files in os.walk(path):
        for name in files:
            _fsync(os.path.join(root, name))
        _fsync(root)


COMPLETE_MARKER = "_COMPLETE"  # written last by publish_dir, with the inventory; schemas/artifacts.py reads it


def inventory(root: str) -> dict:
    """{relative path: {bytes, sha256}} of every file under `root` (the completion marker left out).

    Written into the marker when a directory is published, so that reuse can tell a damaged
    artifact (a deleted or truncated shard, a missing labels file) from a complete one.
    """
    files = {}
    for folder, _dirs, names in fileio.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            relpath = os.path.relpath(path, root)
            if relpath != COMPLETE_MARKER:
                files[relpath] = {"bytes": fileio.stat(path).length, "sha256": fileio.file_sha256(path)}
    return files


@contextlib.contextmanager
def publish_dir(final_path: str, overwrite: bool = False, marker: bool = True):
    """Yield a temporary sibling directory; on success it is fsynced, marked and renamed to `final_path`.

    On an exception the temporary directory is removed and `final_path` is left as it was.
    `marker=False` leaves out the completion marker, for a directory that is input data (the demo
    images), where a stray file would be read as data.
    """
    parent = os.path.dirname(final_path.rstrip("/"))
    tmp = os.path.join(parent, f".tmp-{os.path.basename(final_path.rstrip('/'))}-{uuid.uuid4().hex[:8]}")
    fileio.makedirs(tmp)
    try:
        yield tmp
        atomic = fileio.atomic_rename(final_path)
        if marker and atomic:
            write_json(os.path.join(tmp, COMPLETE_MARKER), {"complete": True, "files": inventory(tmp)})
        _fsync_tree(tmp)
        if fileio.exists(final_path):
            if not overwrite:
                raise FileExistsError(f"{final_path} already exists")
            fileio.rmtree(final_path)
        fileio.rename(tmp, final_path)
        if marker and not atomic:
            write_json(os.path.join(final_path, COMPLETE_MARKER), {"complete": True, "files": inventory(final_path)})
    except BaseException:
        if fileio.exists(tmp):
            fileio.rmtree(tmp)
        raise


def is_complete(path: str) -> bool:
    """True when `path` is a directory published by `publish_dir` (its marker is present)."""
    return bool(path) and fileio.exists(os.path.join(path, COMPLETE_MARKER))


def write_text_atomic(path: str, text: str) -> None:
    """Write a file through a temporary sibling and a rename."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fileio.GFile(tmp, "w") as f:
        f.write(text)
    fileio.rename(tmp, path, overwrite=True)


def write_json(path: str, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
    with fileio.GFile(path, "r") as f:
        return json.load(f)


def copy_tree(src: str, dst: str, skip=()) -> None:
    """Copy the files under `src` into `dst` (any filesystem), leaving out paths in `skip`."""
    for root, _dirs, files in fileio.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        fileio.makedirs(target)
        for name in files:
            if os.path.join(root, name) not in skip:
                fileio.copy(os.path.join(root, name), os.path.join(target, name), overwrite=True)
