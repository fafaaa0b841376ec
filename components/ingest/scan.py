"""Find the candidate images of a class-per-sub-folder layout, and account for everything else.

The class of a file is its first-level folder under the data folder; deeper folders belong to
that class. Files directly in the data folder, hidden/system files (`.DS_Store`, `Thumbs.db`,
`._*`, anything under a hidden folder or `__MACOSX`) and entries that are no regular file (named
pipes, sockets, devices: reading a named pipe would wait forever) are ignored and counted, so
that kept + rejected + ignored = found holds for every file the scan sees. A symlink to a regular
file is read; a dangling one is a candidate that the read rejects as `unreadable`. A symlinked
folder that points back to one of its own ancestors (a loop) is not entered: every file it would
reach is reachable another way, so it is ignored as `symlink_loop`, counted, and listed in
`ScanResult.symlink_loops` for the validation warning that names it.

The orchestrator fingerprints the data folder from this same scan (`ScanResult.seen`), so it
tolerates every name and folder the ingest does and stops with the same messages.

Local folders are walked with `os.scandir` rather than Beam's local `FileSystems.match`, which
silently skips unreadable directories and does not follow symlinked folders; here an unreadable
folder is a `DataError` that names it, and a symlink loop is ignored and named. Remote folders (gs://, s3://, ...) are
listed with `FileSystems.match(prefix/**)`: object stores have no folders, links or loops.
"""

import dataclasses
import os
import stat
from typing import List, Optional, Tuple

from components.common.errors import DataError
from schemas import reasons

IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx"}
# Reasons a file is ignored (not an error, not a candidate): the scan's own accounting.
IGNORED_OUTSIDE_CLASS = "outside_class_folder"
IGNORED_HIDDEN = "hidden_or_system"
IGNORED_NOT_REGULAR = "not_a_regular_file"  # a named pipe, socket or device
IGNORED_SYMLINK_LOOP = "symlink_loop"  # a symlinked folder pointing back to an ancestor
# A file name that is not valid UTF-8 cannot be stored in the manifest or a tf.Example.


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One file to read: its full path, its '/'-separated path under the data folder (or as a manifest
    names it), its class, and the split a manifest gave it (None: the split rule decides)."""

    path: str
    relpath: str
    label_text: str
    given_split: Optional[str] = None


@dataclasses.dataclass
class ScanResult:
    candidates: List[Candidate]
    ignored: List[Tuple[str, str]]  # (relpath, why)
    rejected: List[Tuple[str, str, str]]  # (relpath, reason, detail)
    seen: List[Tuple[str, str]] = dataclasses.field(default_factory=list)  # (relpath, path) of every file
    class_folders: List[str] = dataclasses.field(default_factory=list)  # first-level folders (local scans)
    symlink_loops: List[str] = dataclasses.field(default_factory=list)  # relpaths of the links not followed

    @property
    def empty_class_folders(self) -> List[str]:
        """Class folders holding no candidate file: no class of the model, which the user may not expect."""
        return sorted(set(self.class_folders) - {c.label_text for c in self.candidates})

    @property
    def found(self) -> int:
        return len(self.candidates) + len(self.ignored) + len(self.rejected)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def _printable(relpath: str) -> str:
    """A non-UTF-8 name shown with its undecodable bytes escaped (it cannot be stored as is)."""
    return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _classify(relpath: str, scan: ScanResult, path: str) -> None:
    """Put one file (by its path under the data folder) into candidates, ignored or rejected."""
    parts = relpath.split("/")
    scan.seen.append((_printable(relpath), path))
    if any(_is_hidden(p) for p in parts):
        scan.ignored.append((_printable(relpath), IGNORED_HIDDEN))
    elif len(parts) == 1:
        scan.ignored.append((_printable(relpath), IGNORED_OUTSIDE_CLASS))
    elif not _is_utf8(relpath):
        scan.rejected.append(
            (_printable(relpath), reasons.BAD_FILENAME, "file name is not valid UTF-8: rename the file (or folder)")
        )
    else:
        scan.candidates.append(Candidate(path=path, relpath=relpath, label_text=parts[0]))


def _walk_local(root: str, scan: ScanResult) -> None:
    """Depth-first walk that follows symlinks, raising on unreadable folders; a loop is ignored, not entered."""
    stack = [(root, "", (os.path.realpath(root),))]
    while stack:
        folder, rel, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise DataError(
                f"cannot read the folder {_printable(folder)!r} under the data folder ({e.strerror}): "
                "fix its permissions, or move it out of the data folder"
            ) from None
        for entry in entries:
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if not is_dir:
                if _special(entry):
                    scan.seen.append((_printable(entry_rel), entry.path))
                    scan.ignored.append((_printable(entry_rel), IGNORED_NOT_REGULAR))
                else:
                    _classify(entry_rel, scan, entry.path)
                continue
            real = os.path.realpath(entry.path)
            if real in ancestors:
                scan.seen.append((_printable(entry_rel), entry.path))
                scan.ignored.append((_printable(entry_rel), IGNORED_SYMLINK_LOOP))
                scan.symlink_loops.append(_printable(entry_rel))
                continue
            if not rel and not _is_hidden(entry.name):
                scan.class_folders.append(_printable(entry.name))
            stack.append((entry.path, entry_rel, ancestors + (real,)))


def _special(entry: os.DirEntry) -> bool:
    """A named pipe, socket or device (followed through symlinks); a dangling link is not special."""
    try:
        mode = entry.stat(follow_symlinks=True).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)


def _walk_remote(root: str, scan: ScanResult) -> None:
    from apache_beam.io.filesystems import FileSystems  # here: a local scan (and the orchestrator) needs no Beam

    prefix = root.rstrip("/") + "/"
    for match in FileSystems.match([prefix + "**"]):
        for meta in sorted(match.metadata_list, key=lambda m: m.path):
            _classify(meta.path[len(prefix) :], scan, meta.path)


def check_root(data_dir: str, named: str = "--data-dir") -> None:
    """DataError when `data_dir` is missing or is a file (the cheap check, before anything runs), or
    holds fewer than two class folders. named: where the user gave it (`ingest.data_dir in FILE`)."""
    if "://" in data_dir:
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(data_dir.rstrip("/") + "/") and not FileSystems.exists(data_dir):
            raise DataError(f"data folder {data_dir!r} does not exist: check {named}")
    elif not os.path.exists(data_dir):
        raise DataError(f"data folder {data_dir!r} does not exist: check {named}")
    elif not os.path.isdir(data_dir):
        raise DataError(
            f"{named} {data_dir!r} is a file, not a folder: give the folder that holds one sub-folder per class"
        )
    else:
        _check_class_folders(data_dir)


def _check_class_folders(data_dir: str) -> None:
    """DataError for a local folder with fewer than two class sub-folders: a flat folder of images, or one
    class. Its first level only (one listing, no walk), so the mistake is told at once, before a backbone
    is built or a file read; what the sub-folders hold is the scan's and the ingest's to judge."""
    with os.scandir(data_dir) as entries:
        visible = [e for e in entries if not _is_hidden(e.name)]
    folders = sorted(e.name for e in visible if e.is_dir())
    if len(folders) >= 2:
        return
    if not folders:
        files = sum(1 for e in visible if e.is_file())
        raise DataError(
            f"data folder {data_dir!r} has no class sub-folders"
            + (f" ({files} files directly in it, which have no label)" if files else " (it is empty)")
            + ": put each class's images in its own sub-folder, e.g. DATA/cat/1.jpg, DATA/dog/2.jpg"
        )
    raise DataError(
        f"only one class folder ({folders[0]!r}) in {data_dir!r}: a classifier needs at least two class sub-folders"
    )


def scan_folder(data_dir: str) -> ScanResult:
    """List every file under `data_dir`; raise `DataError` when it is missing or unreadable."""
    scan = ScanResult(candidates=[], ignored=[], rejected=[])
    check_root(data_dir)
    if "://" in data_dir:
        _walk_remote(data_dir, scan)
    else:
        _walk_local(data_dir, scan)
    return scan


def folder_listing(data_dir: str) -> dict:
    """{relative path: [size, mtime_ns]} of every file the ingest's scan sees under `data_dir`.

    What `pipeline.run` fingerprints the data folder by. The scan is the ingest's own, so any name or
    folder the ingest tolerates is listed too, and a folder it cannot read stops the run with its
    DataError (exit 3). Files are only stat'ed, never opened (a named pipe would block).
    """
    return stat_listing(scan_folder(data_dir).seen)


def stat_listing(seen) -> dict:
    """{relpath: [size, mtime_ns]} of (relpath, path) pairs; [None, None] for one that cannot be stat'ed."""
    from components.common import fileio

    listing = {}
    for relpath, path in seen:
        try:
            info = fileio.stat(path)
            listing[relpath] = [info.length, info.mtime_nsec]
        except fileio.errors():  # unreadable or vanished: the ingest reports it; still part of the state
            listing[relpath] = [None, None]
    return listing
