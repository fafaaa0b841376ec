"""File operations for any path: the local disk through `os`, every other filesystem through `tf.io.gfile`.

TFX does the same in `tfx.dsl.io.fileio` (a local plugin beside the TensorFlow one). Here the
reason is start-up: importing TensorFlow costs seconds, and the orchestrator, the lineage checks
and a fully cached rerun only stat, read and rename small local files. So a path with a scheme
(`gs://`, `s3://`, `hdfs://`, ...) loads TensorFlow on first use, and a plain path never does.
Components that compute with TensorFlow anyway may call `tf.io.gfile` directly.

The functions keep `tf.io.gfile`'s names and meaning (e.g. `rename` refuses an existing
destination unless `overwrite=True`; `stat` returns `.length`, `.mtime_nsec`, `.is_directory`).
A failure is an `OSError` on the local disk and a `tf.errors.OpError` elsewhere: catch `errors()`.
"""

import collections
import fnmatch
import hashlib
import os
import shutil
import sys

Stat = collections.namedtuple("Stat", ["length", "mtime_nsec", "is_directory"])


def _remote(path) -> bool:
    return "://" in os.fspath(path)


def local(path) -> bool:
    """Whether `path` is on the local disk: libraries that lock or map files (Optuna's journal) need one."""
    return not _remote(path)


def atomic_rename(path) -> bool:
    """Whether renaming a directory at `path` is atomic: on local disks yes; on object stores
    (`gs://`, `s3://`) a directory rename copies object by object, so callers must not count on it."""
    return local(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def errors() -> tuple:
    """The exception types a file operation raises: OSError, plus TensorFlow's when it is loaded."""
    tf = sys.modules.get("tensorflow")
    op_error = getattr(getattr(tf, "errors", None), "OpError", None)
    return (OSError,) if op_error is None else (OSError, op_error)


def exists(path) -> bool:
    return _gfile().exists(path) if _remote(path) else os.path.exists(path)


def isdir(path) -> bool:
    return _gfile().isdir(path) if _remote(path) else os.path.isdir(path)


def listdir(path) -> list:
    return _gfile().listdir(path) if _remote(path) else os.listdir(path)


def walk(top):
    """(folder, sub-folders, files) for every folder under `top`, top first; nothing when it is missing."""
    return _gfile().walk(top) if _remote(top) else os.walk(top)


def find(folder, *patterns) -> list:
    """Sorted paths below `folder` whose names match `patterns`, one shell-style pattern per level.

    `folder` is taken literally: a user's path may hold `[`, `*` or `?` (`/data/root [v2]`), which a
    glob over the joined path would read as a pattern and match nothing. Only the names listed at
    each level are matched, so no path ever goes through a glob.
    """
    level = [os.fspath(folder)]
    for pattern in patterns:
        level = [
            os.path.join(parent, name)
            for parent in level
            if isdir(parent)
            for name in sorted(n.rstrip("/") for n in listdir(parent))
            if fnmatch.fnmatchcase(name, pattern)
        ]
    return level


_GLOB_CHARACTERS = frozenset("*?[]{}\\")
_links = {}


def glob_safe(path) -> str:
    """`path`, or a symlink to it whose own path holds no glob character, for readers that glob.

    TensorFlow's checkpoint reader (TensorSliceReader, behind `tf.saved_model.load`) matches the
    variables' prefix as a pattern, so a SavedModel under `/data/root [v2]` or `/data/a*b` fails to
    load ("Failed to find any matching files"), though it saves fine. The link lives in a private
    temporary folder for the life of the process (a loaded model may read its assets later).
    A remote path is returned as it is: object-store names rarely hold these characters.
    """
    path = os.fspath(path)
    if _remote(path) or not _GLOB_CHARACTERS.intersection(path):
        return path
    import atexit
    import tempfile

    if "dir" not in _links:
        _links["dir"] = tempfile.mkdtemp(prefix="transferline-links-")
        atexit.register(shutil.rmtree, _links["dir"], True)
    real = os.path.abspath(path)
    link = os.path.join(_links["dir"], hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:20])
    if not os.path.lexists(link):
        os.symlink(real, link)
    return link


def stat(path) -> Stat:
    if _remote(path):
        info = _gfile().stat(path)
        return Stat(info.length, info.mtime_nsec, info.is_directory)
    info = os.stat(path)
    return Stat(info.st_size, info.st_mtime_ns, os.path.isdir(path))


def makedirs(path) -> None:
    if _remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path) -> None:
    if _remote(path):
        _gfile().remove(path)
    else:
        os.remove(path)


def rmtree(path) -> None:
    if _remote(path):
        _gfile().rmtree(path)
    else:
        shutil.rmtree(path)


def _refuse_existing(dst, overwrite: bool) -> None:
    if not overwrite and os.path.lexists(dst):
        raise FileExistsError(f"{dst} already exists")


def rename(src, dst, overwrite: bool = False) -> None:
    """Move `src` to `dst`; an existing `dst` is an error unless `overwrite` (then a file is replaced)."""
    if _remote(src) or _remote(dst):
        return _gfile().rename(src, dst, overwrite=overwrite)
    _refuse_existing(dst, overwrite)
    os.replace(src, dst)


def copy(src, dst, overwrite: bool = False) -> None:
    if _remote(src) or _remote(dst):
        return _gfile().copy(src, dst, overwrite=overwrite)
    _refuse_existing(dst, overwrite)
    shutil.copyfile(src, dst)


def GFile(path, mode: str = "r"):  # noqa: N802 - tf.io.gfile's name, so call sites read the same
    """An open file object; text modes read and write UTF-8 on every filesystem."""
    if _remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode) if "b" in mode else open(path, mode, encoding="utf-8")


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes, read 8 MiB at a time."""
    h = hashlib.sha256()
    with GFile(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()
