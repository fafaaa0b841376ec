"""Which layers train in a stage, and the one loss and the optimizer each stage compiles with.

Freezing rules (the TFX cifar10 example gets both wrong):
- BatchNorm layers of a pretrained backbone never train: their scale/offset stay, and because the
  backbone is called with `training=False` their moving statistics stay too.
- A stage unfreezes "none", "all", the top fraction of the backbone's layers, or a named block and
  everything after it; the head always trains.
- One loss object, built once per run, is passed to every stage's `compile`: stages cannot drift
  apart in `from_logits` or label smoothing.
"""

import math

import keras

from components.common.errors import UsageError
from components.train import distill
from components.train.config import StageConfig, TrainConfig


def is_batchnorm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def _layers(backbone: keras.Model) -> list:
    return [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]


def block_names(backbone: keras.Model) -> list:
    """Distinct block prefixes of the backbone's layer names (for error messages)."""
    names = []
    for layer in _layers(backbone):
        prefix = (
            layer.name.split("_")[0] if not layer.name.startswith("block_") else "_".join(layer.name.split("_")[:2])
        )
        if prefix not in names:
            names.append(prefix)
    return names


def first_unfrozen_index(backbone: keras.Model, unfreeze) -> int:
    """Index into the backbone's layers (input layer excluded) of the first layer that trains."""
    layers = _layers(backbone)
    if unfreeze == "none":
        return len(layers)
    if unfreeze == "all":
        return 0
    if isinstance(unfreeze, (int, float)):
        return len(layers) - math.ceil(float(unfreeze) * len(layers))
    for i, layer in enumerate(layers):
        if layer.name == unfreeze or layer.name.startswith(f"{unfreeze}_"):
            return i
    raise UsageError(
        f"unfreeze={unfreeze!r}: {backbone.name} has no block of that name; blocks are "
        f"{', '.join(block_names(backbone))} (or use 'none', 'all' or a fraction such as 0.3)"
    )


def set_trainable(model: keras.Model, backbone: keras.Model, stage: StageConfig, *, train_batchnorm: bool) -> list:
    """Freeze/unfreeze for `stage`; returns the names of the backbone layers that now train."""
    model.trainable = True
    backbone.trainable = True
    start = first_unfrozen_index(backbone, stage.unfreeze)
    unfrozen = []
    for i, layer in enumerate(_layers(backbone)):
        trains = i >= start and (train_batchnorm or not is_batchnorm(layer))
        layer.trainable = trains
        if trains and layer.weights:
            unfrozen.append(layer.name)
    if not any(layer.trainable for layer in _layers(backbone)):
        backbone.trainable = False
    return unfrozen


def make_loss(config: TrainConfig, num_classes: int) -> keras.losses.Loss:
    """The run's single loss: categorical cross-entropy on probabilities, with label smoothing; with
    `train.distill`, Hinton's distillation loss around it (components/train/distill.py)."""
    if config.distill.enabled:
        return distill.DistillationLoss(
            num_classes, config.distill.temperature, config.distill.alpha, config.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=config.label_smoothing, name="loss")


@keras.saving.register_keras_serializable(package="transferline")
class LabelAccuracy(keras.metrics.CategoricalAccuracy):
    """Accuracy on the first `num_classes` columns of the targets: the labels (distillation appends the
    teacher's probabilities after them; without it there is nothing after them)."""

    def __init__(self, num_classes: int, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true[:, : self.num_classes], y_pred, sample_weight)

    def get_config(self):  # model.keras saves the compiled metrics: loading rebuilds this one
        return {**super().get_config(), "num_classes": self.num_classes}


def learning_rate(stage: StageConfig, steps_per_epoch: int):
    """Linear warmup to the stage's rate, then cosine decay to 0 (or a constant rate)."""
    total = stage.epochs * steps_per_epoch
    warmup = int(round(stage.warmup_epochs * steps_per_epoch))
    if not stage.cosine_decay:
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                0.0, 1, alpha=1.0, warmup_target=stage.learning_rate, warmup_steps=warmup
            )
        return stage.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else stage.learning_rate,
        decay_steps=max(1, total - warmup),
        warmup_target=stage.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(config: TrainConfig, stage: StageConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    rate = learning_rate(stage, steps_per_epoch)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(rate)
