"""The trainer's configuration: what a user may set, validated once before any work starts.

`pipeline.config` derives its YAML keys and command-line flags from these dataclasses, so every
field has a plain name, a documented meaning and an allowed range that `validate()` enforces with
a `UsageError` naming the field, the bad value and what is allowed.

Stages follow the Keras transfer-learning guide: a `head` stage trains the new classifier on a
frozen backbone (called with `training=False`), then a `finetune` stage unfreezes the top of the
backbone (never its BatchNorm layers) at a low learning rate with warmup and cosine decay. With
`weights="none"` there is nothing to transfer, so the default is one `scratch` stage that trains
everything, BatchNorm included (see `batchnorm.py` for why that needs care).
"""

import dataclasses
import math
import re
from typing import Optional, Tuple, Union

from components.common.errors import UsageError
from components.train import families


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations; each is off at 0 (or False). Evaluation never augments.

    crop_area: random-resized-crop, range of the crop's fraction of the image area ((1, 1): off).
    crop_aspect: range of the crop's width/height ratio.
    flip: random horizontal flip.
    rotation: maximum rotation, as a fraction of a full turn (0.05 = +/-18 degrees).
    zoom: maximum zoom in or out, as a fraction of the image size (`keras.layers.RandomZoom`).
    contrast: maximum contrast change, as a fraction (`keras.layers.RandomContrast`).
    brightness: maximum brightness shift, as a fraction of 255 (`keras.layers.RandomBrightness`).
    randaugment_ops: RandAugment operations per batch (0: off; components/train/batch_augment.py).
    randaugment_magnitude: the strength of RandAugment's operations, in (0, 1].
    mixup: MixUp's Beta(alpha, alpha) (0: off). With cutmix on too, each batch gets one of them;
      labels are mixed with the images.
    cutmix: CutMix's Beta alpha (0: off).
    """

    crop_area: tuple = (0.6, 1.0)
    crop_aspect: tuple = (3 / 4, 4 / 3)
    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    contrast: float = 0.2
    brightness: float = 0.2
    randaugment_ops: int = 0
    randaugment_magnitude: float = 0.5
    mixup: float = 0.0
    cutmix: float = 0.0

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all (images are only decoded and resized, as for evaluation)."""
        return cls(
            crop_area=(1.0, 1.0),
            crop_aspect=(1.0, 1.0),
            flip=False,
            rotation=0.0,
            zoom=0.0,
            contrast=0.0,
            brightness=0.0,
            randaugment_ops=0,
            mixup=0.0,
            cutmix=0.0,
        )

    def validate(self, where: str = "train.augment") -> None:
        lo, hi = self.crop_area
        if not 0.0 < lo <= hi <= 1.0:
            raise UsageError(
                f"{where}.crop_area={self.crop_area}: needs 0 < low <= high <= 1 (fraction of the image area)"
            )
        lo, hi = self.crop_aspect
        if not 0.0 < lo <= hi:
            raise UsageError(f"{where}.crop_aspect={self.crop_aspect}: needs 0 < low <= high (width/height ratios)")
        for name, top in (("rotation", 0.5), ("zoom", 0.9), ("contrast", 1.0), ("brightness", 1.0)):
            value = getattr(self, name)
            if not 0.0 <= value <= top:
                raise UsageError(f"{where}.{name}={value}: must be between 0 (off) and {top}")
        if not isinstance(self.randaugment_ops, int) or not 0 <= self.randaugment_ops <= 4:
            raise UsageError(f"{where}.randaugment_ops={self.randaugment_ops!r}: must be an integer from 0 (off) to 4")
        if not 0.0 < self.randaugment_magnitude <= 1.0:
            raise UsageError(f"{where}.randaugment_magnitude={self.randaugment_magnitude!r}: must be in (0, 1]")
        for name in ("mixup", "cutmix"):
            value = getattr(self, name)
            if not 0.0 <= value <= 10.0:
                raise UsageError(f"{where}.{name}={value!r}: a Beta distribution's alpha, 0 (off) to 10 (e.g. 0.2)")

    @property
    def crops(self) -> bool:
        return tuple(self.crop_area) != (1.0, 1.0)

    @property
    def is_off(self) -> bool:
        """True when no per-image augmentation runs: training then decodes exactly as evaluation
        does (the batch-level RandAugment, MixUp and CutMix may still be on: `batch_augment.is_on`)."""
        return not (self.crops or self.flip or self.rotation or self.zoom or self.contrast or self.brightness)


@dataclasses.dataclass(frozen=True)
class TrainAugment(AugmentConfig):
    """The trainer's augmentation defaults: milder than `AugmentConfig`'s general ones.

    A hand sign cropped to 60% can lose the fingers that tell its digit, so crops keep at least
    75% of the image area; contrast and brightness vary by 10%. A subclass (not an instance with
    other values) so that a config giving only some keys gets these defaults for the rest.
    """

    crop_area: tuple = (0.75, 1.0)
    contrast: float = 0.1
    brightness: float = 0.1


@dataclasses.dataclass(frozen=True)
class TrainDistill:
    """Knowledge distillation from a trained teacher (components/train/distill.py); off while `teacher` is "".

    teacher: a model this pipeline trained (`model.keras`, or the train output folder holding it),
      any backbone and input size; its labels must be the data's.
    temperature: T of Hinton et al.: both models' probabilities are softened as softmax(log p / T).
    alpha: the weight of the loss on the labels; 1 - alpha weighs the loss on the teacher's
      softened probabilities (scaled by T^2, as in the paper, so T does not change its weight).
    """

    teacher: str = ""
    temperature: float = 4.0
    alpha: float = 0.5

    @property
    def enabled(self) -> bool:
        return bool(self.teacher)

    def validate(self) -> None:
        if not isinstance(self.teacher, str):
            raise UsageError(
                f"train.distill.teacher={self.teacher!r}: a path to a model.keras (or its train "
                "folder), or empty for no distillation"
            )
        if not 0 < self.temperature <= 100:
            raise UsageError(f"train.distill.temperature={self.temperature!r}: must be in (0, 100], e.g. 4")
        if not 0 <= self.alpha <= 1:
            raise UsageError(f"train.distill.alpha={self.alpha!r}: must be in [0, 1] (the labels' share of the loss)")


PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
_DEVICE = re.compile(r"^/(device:)?(cpu|gpu):\d+$", re.IGNORECASE)


def devices_list(text: str) -> tuple:
    """The device names of `train.devices` (() for "auto"); UsageError for a name TensorFlow would not take."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"train.devices={text!r}: 'auto' or a comma-separated list like '/gpu:0,/gpu:1'")
    if text.strip() == "auto":
        return ()
    names = tuple(name.strip() for name in text.split(","))
    bad = [name for name in names if not _DEVICE.match(name)]
    if bad or len(set(n.lower() for n in names)) != len(names):
        raise UsageError(
            f"train.devices={text!r}: {', '.join(bad) or 'a device named twice'}; give distinct TensorFlow device "
            "names like /gpu:0,/gpu:1 (or 'auto')"
        )
    return names


CLASS_WEIGHTS = ("auto", "none")
OPTIMIZERS = ("adam", "adamw")


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """One `Model.fit` run with its own trainable layers, optimizer and early stopping.

    name: the stage's name in logs, `history.json` and the resume state ("head", "finetune", ...).
    epochs: the most epochs the stage trains (early stopping may end it sooner).
    unfreeze: which backbone layers train in this stage: "none" (backbone frozen: the head
      stage), "all", a fraction in (0, 1] of the backbone's layers counted from the top, or the
      name of a block (e.g. MobileNetV2 "block_13", EfficientNet "block6a", ResNet "conv5"): that
      block and every layer after it. BatchNorm layers stay frozen unless the backbone trains from
      scratch (weights="none").
    learning_rate: peak learning rate. The schedule warms up linearly over `warmup_epochs`, then
      decays along a cosine to 0 at the stage's last epoch (constant when `cosine_decay` is off).
    warmup_epochs: epochs (a fraction allowed) over which the learning rate rises linearly from 0.
    cosine_decay: decay the learning rate along a cosine to 0 by the stage's last epoch.
    patience: early stopping on validation accuracy after this many epochs without improvement;
      the best epoch's weights are restored. 0 turns early stopping off.
    augment: whether this stage's training input is augmented. A head stage without augmentation
      trains on backbone features computed once (`TrainConfig.cache_features`).
    """

    name: str
    epochs: int
    learning_rate: float
    unfreeze: Union[str, float] = "none"
    warmup_epochs: float = 0.0
    cosine_decay: bool = True
    patience: int = 0
    augment: bool = False

    def validate(self, where: str = "stage") -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise UsageError(f"{where}.name={self.name!r}: use letters, digits, '-' or '_' (e.g. 'head')")
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 1000:
            raise UsageError(f"{where}.epochs={self.epochs!r}: must be an integer from 1 to 1000")
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate <= 1:
            raise UsageError(f"{where}.learning_rate={self.learning_rate!r}: must be in (0, 1], e.g. 1e-3")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise UsageError(
                f"{where}.warmup_epochs={self.warmup_epochs!r}: must be >= 0 and below epochs ({self.epochs})"
            )
        if not isinstance(self.patience, int) or self.patience < 0:
            raise UsageError(f"{where}.patience={self.patience!r}: must be an integer >= 0 (0 = no early stopping)")
        unfreeze = self.unfreeze
        if isinstance(unfreeze, bool) or not isinstance(unfreeze, (str, int, float)):
            raise UsageError(
                f"{where}.unfreeze={unfreeze!r}: must be 'none', 'all', a fraction in (0, 1] "
                "or a block name such as 'block_13'"
            )
        if isinstance(unfreeze, (int, float)) and not 0 < unfreeze <= 1:
            raise UsageError(f"{where}.unfreeze={unfreeze!r}: a fraction of the backbone's layers must be in (0, 1]")
        if isinstance(unfreeze, str) and not unfreeze.strip():
            raise UsageError(f"{where}.unfreeze is empty: use 'none', 'all', a fraction or a block name")

    @property
    def freezes_backbone(self) -> bool:
        return self.unfreeze == "none"


def default_stages(pretrained: bool, finetune_from: str) -> Tuple[StageConfig, ...]:
    """The stages used when the config names none (tuned on the sign-language folder: docs/benchmarks.md).

    finetune_from: the backbone block the fine-tune stage starts at, the family's
    `families.Family.finetune_from` (MobileNetV2's is block_6).
    """
    if not pretrained:
        return (
            StageConfig(
                "scratch", epochs=12, learning_rate=2e-3, unfreeze="all", warmup_epochs=1, patience=0, augment=True
            ),
        )
    return (
        StageConfig(
            "head", epochs=20, learning_rate=3e-3, unfreeze="none", cosine_decay=False, patience=5, augment=False
        ),
        StageConfig(
            "finetune", epochs=8, learning_rate=1e-3, unfreeze=finetune_from, warmup_epochs=1, patience=4, augment=True
        ),
    )


def default_warm_start_stages(finetune_from: str) -> Tuple[StageConfig, ...]:
    """A warm start's recipe: the full recipe's fine-tune, shorter and at a third of its learning rate,
    from the model in production (the head and backbone already fit all but the new images)."""
    return (StageConfig("warm", epochs=3, learning_rate=3e-4, unfreeze=finetune_from, patience=2, augment=True),)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything the trainer may be told (field names are the YAML keys; flags use dashes).

    backbone: the `keras.applications` family, by its registry name (components/train/families.py;
      case, `_` and `-` ignored).
    alpha: the MobileNet width multiplier (None = the family's default: 0.35 for MobileNetV2, 1.0
      for MobileNetV3; other families take none).
    image_size: the square input size in pixels (at least the family's minimum).
    weights: "imagenet" (Keras's download cache), "none" (random init, trained from scratch),
      or a path to a `.weights.h5`/`.keras` backbone or a model this pipeline trained (warm start).
    precision: "auto" (mixed_float16 on GPUs of compute capability >= 7.0; on CPUs with bfloat16
      units the faster of float32 and mixed_bfloat16, measured once per machine, backbone and
      size (components/train/precision.py); else float32), "float32", "mixed_float16" or
      "mixed_bfloat16". The softmax output is float32 either way.
    devices: "auto" (every local GPU: MirroredStrategy when there are several; else the CPU), or a
      comma-separated list of TensorFlow device names ("/gpu:0,/gpu:1"; "/cpu:0,/cpu:1" on a CPU
      split into logical devices) to mirror over exactly those. batch_size is the global batch:
      each of N devices takes batch_size / N images a step (it must divide evenly), and the steps
      per epoch and the learning rates are those of one device with the same batch_size.
    batch_size: images per training step, over all devices together.
    stages: the fine-tuning stages in order; None = `default_stages(weights != "none")`, whose
      fine-tune stage starts at the family's `finetune_from` block.
    optimizer: "adam", or "adamw" (Adam with decoupled weight decay).
    weight_decay: AdamW's decoupled weight decay (with optimizer "adamw").
    label_smoothing: applied by the one loss object shared by all stages.
    class_weights: "auto" weights classes by inverse frequency when the largest training class
      is more than `imbalance_ratio` times the smallest; "none" never does.
    imbalance_ratio: see `class_weights`.
    dropout: the dropout rate of the head, before its dense layer.
    bn_momentum: momentum given to BatchNorm layers that train (from scratch); Keras's 0.99-0.999
      lets the moving statistics lag the weights (docs/training.md, "BatchNorm").
    bn_recalibration_batches: after a stage in which BatchNorm trained, recompute the moving
      statistics as the plain average over this many training batches (0 = off).
    augment: the augmentations of stages with `augment=True` (`TrainAugment`, see input.AugmentConfig).
    cache_features: train a frozen, unaugmented head stage on backbone features computed once (in a
      pipeline run, kept per image across runs: feature_cache.extract_kept).
    evaluate_test: evaluate the final model on the test split (in inference mode).
    seed: seeds Keras, the shuffles and the augmentations.
    train_fraction: train on this stratified fraction of each class's train images (e.g. 0.05 = 20x
      less data), chosen by content rank (components/common/ranking.py); val and test stay whole.
    exclude: a CSV whose `sha256` column names train images to leave out (e.g. a reviewed audit
      `label_issues.csv`; components/train/exclude.py); "" = none. Val and test stay whole.
    distill: train this model as the student of a trained teacher (`TrainDistill`).
    warm_start: "auto" (a pipeline rerun starts from the model in production when it is compatible:
      components/train/warm_start.py), "none" (always the full recipe), or a train output
      directory (or its model.keras) to start from.
    warm_start_stages: the stages a warm start runs instead of `stages`; None =
      `default_warm_start_stages`: one short, low-learning-rate fine-tune of the layers the full
      recipe fine-tunes, over all the training data.
    full_retrain_every: at most this many warm starts in a row; the next run retrains fully.
    full_retrain_if_changed: retrain fully when more than this fraction of the training images
      were added or removed since the model in production was trained.
    """

    backbone: str = "mobilenet_v2"
    alpha: Optional[float] = None
    image_size: int = 96
    batch_size: int = 32
    weights: str = "imagenet"
    precision: str = "auto"
    devices: str = "auto"
    stages: Optional[Tuple[StageConfig, ...]] = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    class_weights: str = "auto"
    imbalance_ratio: float = 1.5
    dropout: float = 0.2
    augment: TrainAugment = TrainAugment()
    bn_momentum: float = 0.9
    bn_recalibration_batches: int = 50
    cache_features: bool = True
    evaluate_test: bool = True
    seed: int = 0
    train_fraction: float = 1.0
    exclude: str = ""
    distill: TrainDistill = TrainDistill()
    warm_start: str = "auto"
    warm_start_stages: Optional[Tuple[StageConfig, ...]] = None
    full_retrain_every: int = 6
    full_retrain_if_changed: float = 0.1

    @property
    def pretrained(self) -> bool:
        return str(self.weights).lower() != "none"

    @property
    def family(self) -> families.Family:
        return families.get(self.backbone)

    @property
    def effective_alpha(self) -> Optional[float]:
        """The width the backbone is built with (the family's default when alpha is None)."""
        return families.check_alpha(self.family, self.alpha)

    def effective_stages(self) -> Tuple[StageConfig, ...]:
        if self.stages is not None:
            return tuple(self.stages)
        return default_stages(self.pretrained, self.family.finetune_from)

    def effective_warm_start_stages(self) -> Tuple[StageConfig, ...]:
        if self.warm_start_stages is not None:
            return tuple(self.warm_start_stages)
        return default_warm_start_stages(self.family.finetune_from)

    def validate(self) -> None:
        """Raise `UsageError` for the first bad field."""
        if not isinstance(self.backbone, str) or not self.backbone:
            raise UsageError(f"train.backbone={self.backbone!r}: name a backbone, e.g. 'mobilenet_v2'")
        if not isinstance(self.image_size, int) or not 16 <= self.image_size <= 1024:
            raise UsageError(f"train.image_size={self.image_size!r}: must be an integer from 16 to 1024 pixels")
        try:  # the family's own limits, without building anything
            families.check_image_size(self.family, self.image_size)
            families.check_alpha(self.family, self.alpha)
        except UsageError as e:
            raise UsageError(f"train: {e}") from None
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 4096:
            raise UsageError(f"train.batch_size={self.batch_size!r}: must be an integer from 1 to 4096")
        if not isinstance(self.weights, str) or not self.weights:
            raise UsageError(f"train.weights={self.weights!r}: use 'imagenet', 'none' or a path to a weights file")
        if self.precision not in PRECISIONS:
            raise UsageError(f"train.precision={self.precision!r}: allowed values are {', '.join(PRECISIONS)}")
        names = devices_list(self.devices)
        if names and self.batch_size % len(names):
            raise UsageError(
                f"train.batch_size={self.batch_size} does not split evenly over the {len(names)} devices of "
                f"train.devices={self.devices!r}: use a multiple of {len(names)} (it is the global batch)"
            )
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"train.optimizer={self.optimizer!r}: allowed values are {', '.join(OPTIMIZERS)}")
        if not 0 <= self.weight_decay < 1:
            raise UsageError(f"train.weight_decay={self.weight_decay!r}: must be in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"train.label_smoothing={self.label_smoothing!r}: must be in [0, 1)")
        if self.class_weights not in CLASS_WEIGHTS:
            raise UsageError(f"train.class_weights={self.class_weights!r}: allowed values are auto, none")
        if not self.imbalance_ratio >= 1:
            raise UsageError(f"train.imbalance_ratio={self.imbalance_ratio!r}: must be >= 1")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"train.dropout={self.dropout!r}: must be in [0, 1)")
        if not 0 <= self.bn_momentum < 1:
            raise UsageError(f"train.bn_momentum={self.bn_momentum!r}: must be in [0, 1), e.g. 0.9")
        if not isinstance(self.bn_recalibration_batches, int) or self.bn_recalibration_batches < 0:
            raise UsageError(
                f"train.bn_recalibration_batches={self.bn_recalibration_batches!r}: must be an integer >= 0 (0 = off)"
            )
        if not isinstance(self.seed, int):
            raise UsageError(f"train.seed={self.seed!r}: must be an integer")
        if not 0.0 < self.train_fraction <= 1.0:
            raise UsageError(
                f"train.train_fraction={self.train_fraction!r}: must be in (0, 1], e.g. 0.05 "
                "to train on 20x less data (val and test stay whole)"
            )
        if not isinstance(self.exclude, str):
            raise UsageError(f"train.exclude={self.exclude!r}: must be a path to a CSV with a sha256 column, or empty")
        self.augment.validate()
        self.distill.validate()
        self._validate_warm_start()
        for key, stages in (
            ("stages", self.effective_stages()),
            ("warm_start_stages", self.effective_warm_start_stages()),
        ):
            if not stages:
                raise UsageError(f"train.{key} is empty: give at least one stage (e.g. the default head + finetune)")
            names = [s.name for s in stages]
            if len(set(names)) != len(names):
                raise UsageError(f"train.{key} names {names}: each stage needs a distinct name")
            for i, stage in enumerate(stages):
                if not isinstance(stage, StageConfig):
                    raise UsageError(f"train.{key}[{i}]={stage!r}: must be a StageConfig")
                stage.validate(where=f"train.{key}[{i}] ({stage.name})")
                if not self.pretrained and stage.freezes_backbone and key == "stages":
                    raise UsageError(
                        f"train.stages[{i}] ({stage.name}) freezes the backbone but train.weights='none': a random "
                        "backbone has nothing to transfer; use unfreeze='all' or pretrained weights"
                    )

    def _validate_warm_start(self) -> None:
        if not isinstance(self.warm_start, str) or not self.warm_start.strip():
            raise UsageError(f"train.warm_start={self.warm_start!r}: auto, none, or a train output directory")
        if isinstance(self.full_retrain_every, bool) or not isinstance(self.full_retrain_every, int):
            raise UsageError(
                f"train.full_retrain_every={self.full_retrain_every!r}: an integer >= 0 (0: never warm-start)"
            )
        if self.full_retrain_every < 0:
            raise UsageError(
                f"train.full_retrain_every={self.full_retrain_every!r}: an integer >= 0 (0: never warm-start)"
            )
        if not isinstance(self.full_retrain_if_changed, (int, float)) or not 0 <= self.full_retrain_if_changed <= 1:
            raise UsageError(f"train.full_retrain_if_changed={self.full_retrain_if_changed!r}: a fraction from 0 to 1")

    def steps_per_epoch(self, num_examples: int) -> int:
        return max(1, math.ceil(num_examples / self.batch_size))
