"""The backbone families the trainer offers and each one's defaults, as plain data.

Kept apart from `backbones.py` (which builds models and imports Keras) so that validating a
config, filling in its defaults and resolving the default stages import nothing heavy.

Per family: the input size its ImageNet weights were trained at (`default_size`, the recommended
size when accuracy matters more than speed), the smallest size Keras accepts (`min_size`), what
preprocessing its weights expect, its default width (`default_alpha`: None for families without a
width multiplier), and `finetune_from`, the block where the default fine-tune stage starts. For
most families that block leaves roughly the top fifth to third of the backbone's layers
trainable, at a block or stage boundary; for VGG16 it is the `block5` of Keras's cats-vs-dogs
fine-tuning guide. MobileNetV2, the default backbone, starts at `block_6` (65% of its layers):
measured on the sign-language folder against `block_13` (25%) and `block_10` (42%), it gained
8 points of test accuracy on the whole folder and 2 with a fifth of it (docs/benchmarks.md, "Small-data
levers"); the other families' blocks are not measured that way. tests/test_backbones.py checks
each block exists in the built backbone and leaves 15-40% of its layers trainable (MobileNetV2:
its measured 65%).

Names are Keras's (`MobileNetV2`, `EfficientNetV2S`, ...) and match ignoring case, `_` and `-`.
"""

import dataclasses
from typing import Optional

from components.common.errors import UsageError
from components.common.suggest import did_you_mean

BUILTIN = "built into the model (takes 0-255)"
SCALE_TO_PLUS_MINUS_ONE = "scale 0-255 to [-1, 1]"
CAFFE = "caffe: RGB->BGR, minus the ImageNet channel means"


@dataclasses.dataclass(frozen=True)
class Family:
    """One registry entry: how to build the family, what its weights expect, and its defaults."""

    name: str  # keras.applications.<name> builds it
    default_size: int  # the size its ImageNet weights were trained at (recommended for accuracy)
    min_size: int  # the smallest input Keras accepts for it
    preprocessing: str  # BUILTIN, SCALE_TO_PLUS_MINUS_ONE or CAFFE
    module: str  # keras.applications.<module> holds its preprocess_input
    finetune_from: str  # first block of the default fine-tune stage
    default_alpha: Optional[float] = None  # the width multiplier used when none is given
    has_include_preprocessing: bool = False  # constructor takes include_preprocessing

    @property
    def has_alpha(self) -> bool:
        return self.default_alpha is not None


def _family(name, default_size, preprocessing, module, finetune_from, min_size=32, **kwargs) -> Family:
    return Family(name, default_size, min_size, preprocessing, module, finetune_from, **kwargs)


FAMILIES = {
    family.name: family
    for family in [
        *[
            _family(f"EfficientNetB{i}", size, BUILTIN, "efficientnet", "block6a")
            for i, size in enumerate([224, 240, 260, 300, 380, 456, 528, 600])
        ],
        *[
            _family(f"EfficientNetV2{v}", size, BUILTIN, "efficientnet_v2", block, has_include_preprocessing=True)
            for v, size, block in [
                ("B0", 224, "block6d"),
                ("B1", 240, "block6d"),
                ("B2", 260, "block6d"),
                ("B3", 300, "block6e"),
                ("S", 384, "block6h"),
            ]
        ],
        # 0.35: the CPU-sized width this project trains by default (ImageNet weights exist for it).
        _family("MobileNetV2", 224, SCALE_TO_PLUS_MINUS_ONE, "mobilenet_v2", "block_6", default_alpha=0.35),
        _family(
            "MobileNetV3Small",
            224,
            BUILTIN,
            "mobilenet_v3",
            "expanded_conv_9",
            default_alpha=1.0,
            has_include_preprocessing=True,
        ),
        _family(
            "MobileNetV3Large",
            224,
            BUILTIN,
            "mobilenet_v3",
            "expanded_conv_12",
            default_alpha=1.0,
            has_include_preprocessing=True,
        ),
        _family("ResNet50V2", 224, SCALE_TO_PLUS_MINUS_ONE, "resnet_v2", "conv5"),
        _family("VGG16", 224, CAFFE, "vgg16", "block5"),
        _family("ConvNeXtTiny", 224, BUILTIN, "convnext", "convnext_tiny_stage_3", has_include_preprocessing=True),
        _family("Xception", 299, SCALE_TO_PLUS_MINUS_ONE, "xception", "block11", min_size=71),
    ]
}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def names() -> list:
    """Every valid backbone name, in registry order (for help texts and error messages)."""
    return list(FAMILIES)


def get(name: str) -> Family:
    """The registry entry for `name` (case, `_` and `-` ignored); UsageError listing the valid names."""
    by_key = {_key(n): family for n, family in FAMILIES.items()}
    family = by_key.get(_key(str(name)))
    if family is None:
        raise UsageError(
            f"unknown backbone {name!r}{did_you_mean(str(name), names(), _key)}: choose one of {', '.join(names())}"
        )
    return family


def check_alpha(family: Family, alpha) -> Optional[float]:
    """The width multiplier to build with (the family's default for None); UsageError when it cannot be used."""
    if alpha is None:
        return family.default_alpha
    if not family.has_alpha:
        raise UsageError(
            f"alpha={alpha}: {family.name} takes no width multiplier (only "
            f"{', '.join(n for n, f in FAMILIES.items() if f.has_alpha)} do); leave train.alpha unset"
        )
    if isinstance(alpha, bool) or not 0.0 < float(alpha) <= 2.0:
        raise UsageError(
            f"alpha={alpha}: the width multiplier must be in (0, 2] (usual values: 0.35, 0.5, 0.75, 1.0, 1.3)"
        )
    return float(alpha)


def check_image_size(family: Family, image_size) -> tuple:
    """`image_size` as (height, width); UsageError when either side is below the family's minimum."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(s) for s in image_size)
    if min(height, width) < family.min_size:
        raise UsageError(
            f"image size {height}x{width} is too small for {family.name}: it needs at least "
            f"{family.min_size}x{family.min_size} (its weights were trained at {family.default_size})"
        )
    return height, width
