"""What the ingest reads, as the orchestrator sees it before the ingest runs: a folder of class folders
or a manifest (components/ingest/manifest.py). `pipeline.run` fingerprints it by `listing` and checks it
by `check` (both given to its driver by the ingest's Node in pipeline/dag.py)."""

import hashlib

from components.common import fileio
from components.ingest import manifest, scan


def root(config) -> str:
    """The folder a listing's relative paths are under: the data folder, or the manifest's."""
    return manifest.folder(config.manifest) if config.manifest else config.data_dir


def listing(config) -> dict:
    """{relative path: [size, mtime_ns]} of every file the ingest would read (a manifest's rows' files), and
    for a manifest the manifest itself under the key "" by its content ([sha256, sha256]), so that an edited
    row (a label, a split) changes the listing even when no image does."""
    if not config.manifest:
        return scan.folder_listing(config.data_dir)
    out = scan.stat_listing(manifest.scan_manifest(config.manifest, config.split_names).seen)
    with fileio.GFile(config.manifest, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    out[""] = [digest, digest]
    return out


def check(config, named: str) -> None:
    """DataError when the source is missing or of the wrong kind (the cheap check, before anything runs)."""
    if config.manifest:
        manifest.check(config.manifest, named)
    else:
        scan.check_root(config.data_dir, named)
