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

from components.common import fileio, formats
from components.common.errors import PipelineError, UsageError
from components.common.outcome import Outcome
from components.common.publish import copy_tree, fsync_dir, publish_dir, write_json, write_text_atomic
from components.push import model_card
from components.push.config import PushConfig
from schemas.artifacts import ExportedModel, ModelBlessing, ServingModel, ServingVersion

log = logging.getLogger(__name__)


class ReloadError(PipelineError):
    """The pushed version does not load or does not answer like a classifier (it was moved aside)."""


@dataclasses.dataclass(frozen=True)
class PushResult(Outcome):
    """What the push did. `pushed` is true only when a version was written; then `output_dir` is it.

    A model that is not blessed is a normal outcome (TFX's pusher records `pushed=0`): `pushed`
    false, `reason` says why, nothing was written; the pipeline maps it to exit code 4.
    """

    pushed: bool
    version: int | None
    output_dir: str
    forced: bool
    retired: list  # versions removed by keep_versions
    seconds: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.pushed

    @property
    def path(self) -> str:
        return self.output_dir

    def summary(self) -> str:
        if not self.pushed:
            return f"not pushed: {self.reason}"
        forced = " (FORCED: NOT BLESSED)" if self.forced else ""
        return f"pushed version {self.version} to {self.output_dir}{forced}"


def _blessing(evaluate_dir: str | None) -> dict:
    """The evaluator's verdict; a missing or incomplete evaluation counts as not blessed."""
    evaluation = ModelBlessing(evaluate_dir or "")
    if evaluate_dir and evaluation.exists(ModelBlessing.BLESSING):
        return {**evaluation.blessing(), "blessed": evaluation.blessed()}
    return {"blessed": False, "failed": [f"no evaluation result at {evaluate_dir}"]}


def reload_check(version_dir: str, model_info: dict) -> None:
    """Load the pushed SavedModel from where TF Serving will read it and classify one image."""
    try:
        model = tf.saved_model.load(fileio.glob_safe(version_dir))
        height, width = model_info["image_size"]
        image = tf.io.encode_jpeg(tf.fill([height, width, 3], tf.constant(128, tf.uint8)))
        probabilities = model.signatures["serving_default"](images=tf.reshape(image, [1]))["probabilities"].numpy()
    except Exception as e:
        raise ReloadError(f"the pushed version {version_dir} does not load or run: {e}") from e
    if probabilities.shape != (1, len(model_info["labels"])) or not np.isclose(probabilities.sum(), 1.0, atol=1e-3):
        raise ReloadError(
            f"the pushed version {version_dir} returned probabilities of shape "
            f"{probabilities.shape} summing to {probabilities.sum():.4f}"
        )


def _move_aside(path: str, why: str) -> str:
    aside = os.path.join(
        os.path.dirname(path), f"{ServingModel.TMP_PREFIX}{why}-{os.path.basename(path)}-{uuid.uuid4().hex[:8]}"
    )
    tf.io.gfile.rename(path, aside)
    return aside


def run(
    config: PushConfig, export_dir: str, evaluate_dir: str | None, serving_dir: str, force: bool = False
) -> PushResult:
    """Push the export in `export_dir` to `serving_dir/<model_name>/<next version>/` if it is blessed.

    Inputs: export_dir (its formats, labels.txt, model_info.json), evaluate_dir (BLESSED and
    blessing.json). Output: a new version directory holding the SavedModel, with assets.extra/
    carrying every other exported format at its export path (tflite/*.tflite, model.onnx:
    components/common/formats/), labels.txt, model_info.json, blessing.json, push.json and
    the model card (model_card.md, model_card.json: components/push/model_card.py)
    (when, from where, forced or not). Written to a '.tmp-' sibling, fsynced, renamed into place,
    then reloaded; versions beyond `keep_versions` are retired.
    Returns `pushed=False` (nothing written) when not blessed and not `force`. Raises ReloadError
    when the pushed version does not load (it is moved out of the version namespace first).
    """
    config.validate()
    start = time.time()
    blessing = _blessing(evaluate_dir)
    if not blessing["blessed"] and not force:
        reasons = "; ".join(blessing.get("failed") or ["see blessing.json"])
        return PushResult(
            False,
            None,
            "",
            False,
            [],
            round(time.time() - start, 2),
            f"the model was not blessed ({reasons}). The serving directory {serving_dir} is "
            "unchanged. Use --force-push only in an emergency.",
        )
    export = ExportedModel(export_dir)
    saved_model = export.saved_model_dir()
    if not tf.io.gfile.exists(os.path.join(saved_model, "saved_model.pb")):
        raise UsageError(f"no SavedModel in {saved_model}: push needs a complete export directory")
    if force and not blessing["blessed"]:
        warning = (
            f"FORCED PUSH of a model that was NOT BLESSED ({'; '.join(blessing.get('failed') or [])}): "
            "emergency use only; this is recorded in assets.extra/push.json"
        )
        log.warning(warning)
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)

    served = ServingModel(serving_dir, config.model_name)
    model_dir = served.uri
    tf.io.gfile.makedirs(model_dir)
    for stale in served.stale_temporaries():  # left by a push that was killed mid-way
        tf.io.gfile.rmtree(stale)
    existing = served.versions()
    version = (existing[-1] if existing else 0) + 1
    final = served.version(version).uri
    model_info = export.info()

    with publish_dir(final) as tmp:
        copy_tree(saved_model, tmp)
        out = ServingVersion(tmp)
        tf.io.gfile.makedirs(out.path(ServingVersion.EXTRA))
        for name, path in export.formats().items():
            if not formats.get(name).reference:  # the SavedModel is the version directory, copied above
                target = out.format_path(export.format_entries()[name]["path"])
                if fileio.isdir(path):
                    copy_tree(path, target)
                else:
                    fileio.makedirs(os.path.dirname(target))
                    fileio.copy(path, target, overwrite=True)
        tf.io.gfile.copy(export.path(ExportedModel.LABELS), out.path(ServingVersion.LABELS))
        tf.io.gfile.copy(export.path(ExportedModel.INFO), out.path(ServingVersion.INFO))
        evaluation = ModelBlessing(evaluate_dir or "")
        if evaluate_dir and evaluation.exists(ModelBlessing.BLESSING):
            tf.io.gfile.copy(evaluation.path(ModelBlessing.BLESSING), out.path(ServingVersion.BLESSING))
        record = {
            "version": version,
            "model_name": config.model_name,
            "pushed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "export_dir": export_dir,
            "evaluate_dir": evaluate_dir,
            "blessed": blessing["blessed"],
            "forced": bool(force and not blessing["blessed"]),
        }
        write_json(out.path(ServingVersion.PUSH), record)
        metrics = evaluation.json_or_none(ModelBlessing.METRICS) if evaluate_dir else None
        card = model_card.build(model_info, blessing if evaluate_dir else None, metrics, record)
        write_json(out.path(ServingVersion.MODEL_CARD_JSON), card)
        write_text_atomic(out.path(ServingVersion.MODEL_CARD), model_card.markdown(card))
    fsync_dir(model_dir)

    try:
        reload_check(final, model_info)
    except ReloadError:
        _move_aside(final, "failed-reload")
        raise

    retired = []
    for old in served.versions()[: -config.keep_versions]:
        tf.io.gfile.rmtree(_move_aside(os.path.join(model_dir, str(old)), "retired"))
        retired.append(old)
    return PushResult(
        True, version, final, bool(force and not blessing["blessed"]), retired, round(time.time() - start, 2)
    )
