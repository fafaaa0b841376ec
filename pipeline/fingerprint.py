"""Input fingerprints: what decides whether a component's earlier output can be reused.

A component's fingerprint hashes its config section, the package version and the fingerprints
of the artifacts it reads (an artifact's fingerprint is that of the execution that wrote it), so
a change anywhere upstream reaches everything downstream. The ingest reads a folder, which is
fingerprinted cheaply from its listing (relative path, size, modification time; the ingest's
`folder_listing`, reached through its Node): a nightly run over 100k unchanged files costs a
directory walk, not a read of every byte. This module names no component.
"""

import functools
import hashlib
import importlib.metadata
import json
import os
import pathlib

from components.common import fileio

_PROJECT = pathlib.Path(__file__).resolve().parents[1]


def digest(obj) -> str:
    """Stable SHA-256 of JSON-able data."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def code_version(package: str | None = None) -> str:
    """Package version plus a hash of the sources a component runs (its package, common, schemas).

    package: the component's folder ("components/train"); None: every component.

    The sources count, not only the version string, so that an edited component (a development
    checkout, a patched install) never reuses outputs its older code produced; without a name,
    all components are hashed (the version recorded with a run).
    """
    try:
        version = importlib.metadata.version("transferline")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    h = hashlib.sha256()
    folders = ("components", "schemas") if package is None else (package, "components/common", "schemas")
    for folder in folders:
        for path in sorted((_PROJECT / folder).rglob("*")):
            if path.suffix in (".py", ".pbtxt") and path.is_file():
                h.update(str(path.relative_to(_PROJECT)).encode())
                h.update(path.read_bytes())
    return f"{version}+src.{h.hexdigest()[:12]}"


def component(name: str, package: str, section: dict, inputs: dict, extra=None) -> str:
    """The fingerprint of one execution of `name` (code in folder `package`): config + code version +
    inputs (+ extra state)."""
    return digest(
        {
            "component": name,
            "config": section,
            "code_version": code_version(package),
            "inputs": inputs,
            "extra": extra,
        }
    )


def proven_unchanged(old: dict, new: dict, data_dir: str, manifest_sha256: dict) -> bool:
    """True when `new` differs from `old` only by modification times of files whose content is unchanged.

    The cheap listing changes when files are merely touched or copied without their times; then
    only those files are read and their sha256 compared with the one the ingest recorded in
    manifest.csv. A touched file the manifest does not hold (a rejected or ignored one) cannot be
    proven, so the ingest runs again.
    """
    if old.keys() != new.keys() or any(old[p][0] != new[p][0] for p in new):
        return False
    for path in (p for p in new if old[p][1] != new[p][1]):
        expected = manifest_sha256.get(path)
        if expected is None:
            return False
        with fileio.GFile(os.path.join(data_dir.rstrip("/"), path), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != expected:
                return False
    return True
