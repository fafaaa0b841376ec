"""TF Serving's layout: `<serving_dir>/<model_name>/<integer version>/`, a SavedModel in each.

TF Serving treats every child folder whose name is an integer as a version and ignores the rest,
so temporary folders are given names starting with '.tmp-' and only become visible when renamed.
"""
import os

import tensorflow as tf

TMP_PREFIX = ".tmp-"


def versions(model_dir: str) -> list:
    """The integer versions present in `model_dir`, ascending."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    return sorted(int(name.rstrip("/")) for name in tf.io.gfile.listdir(model_dir) if name.rstrip("/").isdigit())


def latest_version_dir(serving_dir: str, model_name: str) -> str | None:
    """The newest pushed version's directory (the evaluation baseline), or None when nothing is pushed."""
    model_dir = os.path.join(serving_dir, model_name)
    found = versions(model_dir)
    return os.path.join(model_dir, str(found[-1])) if found else None


def stale_temporaries(model_dir: str) -> list:
    """Leftovers of interrupted pushes (never visible to TF Serving)."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    return [os.path.join(model_dir, name.rstrip("/")) for name in tf.io.gfile.listdir(model_dir)
            if name.startswith(TMP_PREFIX)]
