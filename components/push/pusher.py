"""The push step: a blessed export becomes the next TF Serving version, atomically, then is reloaded."""
import dataclasses
import datetime
import logging
import os
import sys
import time
import uuid

import numpy as np
import tensorflow as tf

from components.common.errors import NotBlessedError, PipelineError, UsageError
from components.common.publish import copy_tree, publish_dir, read_json, write_json
from components.push import versions
from components.push.config import PushConfig

log = logging.getLogger(__name__)
EXTRA = "assets.extra"


class ReloadError(PipelineError):
    """The pushed version does not load or does not answer like a classifier (it was moved aside)."""


@dataclasses.dataclass(frozen=True)
class PushResult:
    pushed: bool
    version: int
    path: str
    forced: bool
    retired: list  # versions removed by keep_versions
    seconds: float

    def summary(self) -> str:
        forced = " (FORCED: NOT BLESSED)" if self.forced else ""
        return f"pushed version {self.version} to {self.path}{forced}"


def _fsync_dir(path: str) -> None:
    """Make a rename inside `path` durable (local filesystems only)."""
    if "://" not in path:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _blessing(evaluate_dir: str | None) -> dict:
    """The evaluator's verdict; a missing or incomplete evaluation counts as not blessed."""
    if evaluate_dir and tf.io.gfile.exists(os.path.join(evaluate_dir, "blessing.json")):
        record = read_json(os.path.join(evaluate_dir, "blessing.json"))
        record["blessed"] = bool(record.get("blessed")) and tf.io.gfile.exists(os.path.join(evaluate_dir, "BLESSED"))
        return record
    return {"blessed": False, "failed": [f"no evaluation result at {evaluate_dir}"]}


def reload_check(version_dir: str, model_info: dict) -> None:
    """Load the pushed SavedModel from where TF Serving will read it and classify one image."""
    try:
        model = tf.saved_model.load(version_dir)
        height, width = model_info["image_size"]
        image = tf.io.encode_jpeg(tf.fill([height, width, 3], tf.constant(128, tf.uint8)))
        probabilities = model.signatures["serving_default"](images=tf.reshape(image, [1]))["probabilities"].numpy()
    except Exception as e:
        raise ReloadError(f"the pushed version {version_dir} does not load or run: {e}") from e
    if probabilities.shape != (1, len(model_info["labels"])) or not np.isclose(probabilities.sum(), 1.0, atol=1e-3):
        raise ReloadError(f"the pushed version {version_dir} returned probabilities of shape "
                          f"{probabilities.shape} summing to {probabilities.sum():.4f}")


def _move_aside(path: str, why: str) -> str:
    aside = os.path.join(os.path.dirname(path), f"{versions.TMP_PREFIX}{why}-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}")
    tf.io.gfile.rename(path, aside)
    return aside


def run(config: PushConfig, export_dir: str, evaluate_dir: str | None, serving_dir: str,
        force: bool = False) -> PushResult:
    """Push the export in `export_dir` to `serving_dir/<model_name>/<next version>/` if it is blessed.

    Inputs: export_dir (saved_model/, tflite/, labels.txt, model_info.json), evaluate_dir (BLESSED
    and blessing.json). Output: a new version directory holding the SavedModel, with
    assets.extra/ carrying labels.txt, model_info.json, tflite/*.tflite, blessing.json and push.json
    (when, from where, forced or not). Written to a '.tmp-' sibling, fsynced, renamed into place,
    then reloaded; versions beyond `keep_versions` are retired.
    Raises NotBlessedError (nothing written) when not blessed and not `force`; ReloadError when
    the pushed version does not load (it is moved out of the version namespace first).
    """
    config.validate()
    start = time.time()
    blessing = _blessing(evaluate_dir)
    if not blessing["blessed"] and not force:
        reasons = "; ".join(blessing.get("failed") or ["see blessing.json"])
        raise NotBlessedError(f"not pushed: the model was not blessed ({reasons}). The serving directory "
                              f"{serving_dir} is unchanged. Use --force-push only in an emergency.")
    saved_model = os.path.join(export_dir, "saved_model")
    if not tf.io.gfile.exists(os.path.join(saved_model, "saved_model.pb")):
        raise UsageError(f"no SavedModel in {saved_model}: push needs a complete export directory")
    if force and not blessing["blessed"]:
        warning = (f"FORCED PUSH of a model that was NOT BLESSED ({'; '.join(blessing.get('failed') or [])}): "
                   "emergency use only; this is recorded in assets.extra/push.json")
        log.warning(warning)
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)

    model_dir = os.path.join(serving_dir, config.model_name)
    tf.io.gfile.makedirs(model_dir)
    for stale in versions.stale_temporaries(model_dir):  # left by a push that was killed mid-way
        tf.io.gfile.rmtree(stale)
    existing = versions.versions(model_dir)
    version = (existing[-1] if existing else 0) + 1
    final = os.path.join(model_dir, str(version))
    model_info = read_json(os.path.join(export_dir, "model_info.json"))

    with publish_dir(final) as tmp:
        copy_tree(saved_model, tmp)
        extra = os.path.join(tmp, EXTRA)
        copy_tree(os.path.join(export_dir, "tflite"), os.path.join(extra, "tflite"))
        for name in ("labels.txt", "model_info.json"):
            tf.io.gfile.copy(os.path.join(export_dir, name), os.path.join(extra, name))
        if evaluate_dir and tf.io.gfile.exists(os.path.join(evaluate_dir, "blessing.json")):
            tf.io.gfile.copy(os.path.join(evaluate_dir, "blessing.json"), os.path.join(extra, "blessing.json"))
        write_json(os.path.join(extra, "push.json"), {
            "version": version, "model_name": config.model_name,
            "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "export_dir": export_dir, "evaluate_dir": evaluate_dir,
            "blessed": blessing["blessed"], "forced": bool(force and not blessing["blessed"]),
        })
    _fsync_dir(model_dir)

    try:
        reload_check(final, model_info)
    except ReloadError:
        _move_aside(final, "failed-reload")
        raise

    retired = []
    for old in versions.versions(model_dir)[:-config.keep_versions]:
        tf.io.gfile.rmtree(_move_aside(os.path.join(model_dir, str(old)), "retired"))
        retired.append(old)
    return PushResult(True, version, final, bool(force and not blessing["blessed"]), retired,
                      round(time.time() - start, 2))
