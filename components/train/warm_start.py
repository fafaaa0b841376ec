"""Warm start: the nightly retrain starts from the model in production instead of from the backbone.

A folder that grows by 1% a night does not need the full recipe every night: the model in
production already knows the other 99%. So a rerun whose model in production was trained by this
trainer, on the same backbone family, width and input size (hence the same preprocessing), starts
from its weights (backbone and head) and runs `train.warm_start_stages`, a short low-learning-rate
fine-tune over all the training data, instead of `train.stages`. Classes added since get new head
rows (initialised as a fresh head's), removed ones lose theirs.

Errors must not compound without bound, so a full retrain is forced after
`train.full_retrain_every` warm starts in a row, and whenever more than `train.full_retrain_if_changed`
of the training images were added or removed since the model in production was trained. The gate
then compares the candidate with the model in production as for any run, so a warm start that got
worse is never pushed. Every decision, and why, is printed and recorded in model_info.json.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from components.common.errors import UsageError
from components.common.trained_model import HEAD_DENSE
from components.train import families
from schemas.artifacts import Model


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether this run warm-starts: from `source` (a train output), or not, and why."""

    source: Optional[str]  # the train output whose weights are the start; None: full recipe
    reason: str
    generation: int = 0  # warm starts in a row ending with this run (0: a full retrain)
    changed_fraction: Optional[float] = None  # training images added or removed since `source`'s data

    def record(self) -> dict:
        return dataclasses.asdict(self)


def decide(config, source: Optional[str], labels: list, train_images: set) -> Decision:
    """Warm-start from `source` (a train output dir) or not, by the rules of the module docstring."""
    if config.warm_start == "none":
        return Decision(None, "train.warm_start is none")
    if not config.pretrained:
        return Decision(None, "trained from scratch (train.weights: none): warm start is for transfer learning")
    if source is None:
        return Decision(None, "no model in production trained by this pipeline to start from")
    earlier = Model(source)
    if not (earlier.exists(Model.MODEL) and earlier.exists(Model.INFO)):
        if config.warm_start != "auto":
            raise UsageError(
                f"train.warm_start={config.warm_start!r}: {source} is not a train output (model.keras and "
                "model_info.json); give a train output directory, auto, or none"
            )
        return Decision(None, f"the model in production's train output {source} is gone (retention?)")
    info = earlier.info()
    wanted = {"backbone": config.family.name, "alpha": config.effective_alpha, "image_size": [config.image_size] * 2}
    found = {
        "backbone": families.get(info.get("backbone", "?")).name if info.get("backbone") else None,
        "alpha": info.get("alpha"),
        "image_size": list(info.get("image_size", [])),
    }
    for key, value in wanted.items():
        if found[key] != value:
            return Decision(None, f"incompatible model in production: {key} {found[key]} there, {value} now")
    previous = info.get("warm_start") or {}
    generation = int(previous.get("generation", 0)) + 1
    if generation > config.full_retrain_every:
        return Decision(
            None, f"{generation - 1} warm starts in a row: a full retrain every {config.full_retrain_every + 1} runs"
        )
    changed = _changed_fraction(earlier, train_images)
    if changed is None:
        return Decision(None, f"{source} does not list its training images (trained before warm starts existed)")
    if changed > config.full_retrain_if_changed:
        return Decision(
            None,
            f"{changed:.1%} of the training images changed since the model in production "
            f"(above train.full_retrain_if_changed={config.full_retrain_if_changed})",
            changed_fraction=changed,
        )
    return Decision(
        source, f"warm start {generation} of at most {config.full_retrain_every} in a row", generation, changed
    )


def _changed_fraction(earlier: Model, train_images: set) -> Optional[float]:
    """Training images added, removed or relabelled over all that either model trained on (at most 1);
    `train_images` holds "sha256<TAB>label" lines, so a relabelled image is one removed and one added."""
    if not earlier.exists(Model.TRAIN_IMAGES):
        return None
    before = set(earlier.text(Model.TRAIN_IMAGES).splitlines())
    return len(before ^ train_images) / max(1, len(before | train_images))


def load_into(model, source: str, labels: list) -> dict:
    """Copy `source`'s weights into `model` (same architecture but for the head's width): every layer
    but the head's Dense as is; its Dense column by column, by class name. Returns {"kept", "added",
    "removed"} class names."""
    from components.common.trained_model import load_model

    earlier = load_model(Model(source).model_path())
    earlier_labels = Model(source).info()["labels"]
    for layer in model.layers:
        if layer.name == HEAD_DENSE or not layer.weights:
            continue
        layer.set_weights(earlier.get_layer(layer.name).get_weights())
    kernel, bias = (np.array(w) for w in model.get_layer(HEAD_DENSE).get_weights())
    old_kernel, old_bias = earlier.get_layer(HEAD_DENSE).get_weights()
    kept = [name for name in labels if name in earlier_labels]
    for name in kept:
        new, old = labels.index(name), earlier_labels.index(name)
        kernel[:, new], bias[new] = old_kernel[:, old], old_bias[old]
    model.get_layer(HEAD_DENSE).set_weights([kernel, bias])
    return {"kept": kept, **class_changes(earlier_labels, labels)}


def class_changes(earlier_labels: list, labels: list) -> dict:
    """The classes added since `earlier_labels` and those removed."""
    return {
        "added": [name for name in labels if name not in earlier_labels],
        "removed": [name for name in earlier_labels if name not in labels],
    }


def train_images_text(train_images: set) -> str:
    """Model.TRAIN_IMAGES: "sha256<TAB>label" of every training image, sorted, one a line."""
    return "".join(f"{line}\n" for line in sorted(train_images))


def resolve_source(config) -> Optional[str]:
    """The train output a PATH in `train.warm_start` names (its model.keras's folder, or itself)."""
    if config.warm_start in ("auto", "none"):
        return None
    path = config.warm_start
    return os.path.dirname(path) if path.endswith(".keras") else path
