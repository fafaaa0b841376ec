"""What a training config promises that can be checked without the data, checked before any work.

Keras checks a layer's arguments in its constructor; a pipeline that ingests for minutes before it
says "unknown backbone" or "no block named block_13" wastes the user's time. `check` builds the
backbone with its weights (seconds) and resolves every stage's `unfreeze` against it, so each
such mistake is a UsageError (exit 2) before the ingest starts.
"""

import os

from components.common.errors import UsageError
from components.train import distill, exclude
from components.train.backbones import build_backbone
from components.train.config import TrainConfig, devices_list
from components.train.devices import check_devices, check_tf_config
from components.train.stages import first_unfrozen_index


def check(config: TrainConfig) -> None:
    """UsageError for a backbone, alpha, image size, weights file, unfreeze block, exclude list or distillation
    teacher that cannot work,
    devices this machine does not have, or a TF_CONFIG asking for multi-worker training
    (components/train/devices.py says why)."""
    config.validate()
    if config.exclude:
        exclude.read(config.exclude)
    if config.distill.enabled:
        distill.teacher_path(config.distill.teacher)
    check_tf_config(os.environ.get("TF_CONFIG"))
    check_devices(devices_list(config.devices))
    _, backbone = build_backbone(config.backbone, config.image_size, config.weights, alpha=config.alpha)
    for i, stage in enumerate(config.effective_stages()):
        try:
            first_unfrozen_index(backbone, stage.unfreeze)
        except UsageError as e:
            raise UsageError(f"train.stages[{i}] ({stage.name}): {e}") from None
