"""The backbone registry: which `keras.applications` models the trainer offers, and how to build one.

API (the rest of the trainer assembles the classifier from these):

- `build_backbone(name, image_size, weights="none", alpha=None) -> (preprocessing, backbone)`:
  `preprocessing` is a Keras layer named "preprocessing" mapping raw RGB 0-255 to what the weights
  expect, or None when the backbone has its preprocessing built in (EfficientNet, EfficientNetV2,
  ConvNeXt and MobileNetV3 take 0-255 and normalise inside); `backbone` is the headless
  `keras.applications` model named "backbone", output a feature map [B, h, w, C]. The classifier
  is then `inputs (0-255) -> preprocessing -> backbone(training=False) -> head`, so the saved
  model takes raw pixels and a warm start finds the backbone by its name.
- The families and their defaults (sizes, preprocessing, width, where fine-tuning starts) are
  plain data in `families.py`: `families.get(name)`, `families.names()`.

Weights (`weights=`):
- `"imagenet"`: Keras downloads and caches them; when that fails (offline) the error names the
  alternatives, `--weights PATH` and `--weights none`.
- `"none"` (or None): random initialisation.
- a `.weights.h5` file saved from the same backbone (`backbone.save_weights`).
- a `.keras` file holding either a backbone (e.g. ../shared/weights/mobilenetv2_0.35_96_cifar6_notop.keras)
  or a classifier this pipeline trained earlier (its layer named "backbone" is reused; the head
  is new: a warm start). The weights are copied into a freshly built backbone, so the input size
  may differ from the file's (these backbones are fully convolutional).
A missing file, an unreadable one, or one holding a different architecture is a `UsageError`.
"""

from typing import Optional

import keras

from components.common.backbone_weights import BACKBONE_LAYER_NAME, first_line, load_file_weights
from components.common.errors import UsageError
from components.common.layers import CaffePreprocessing
from components.train.families import CAFFE, SCALE_TO_PLUS_MINUS_ONE, Family, check_alpha, check_image_size, get

PREPROCESSING_LAYER_NAME = "preprocessing"


def make_preprocessing(spec: Family) -> Optional[keras.layers.Layer]:
    """The layer that turns raw 0-255 RGB into what `spec`'s weights expect (None: built in)."""
    if spec.preprocessing == SCALE_TO_PLUS_MINUS_ONE:
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=PREPROCESSING_LAYER_NAME)
    if spec.preprocessing == CAFFE:
        return CaffePreprocessing(name=PREPROCESSING_LAYER_NAME)
    return None


def _construct(spec: Family, image_size, weights, alpha):
    kwargs = dict(include_top=False, weights=weights, input_shape=(*image_size, 3))
    if spec.has_alpha:
        kwargs["alpha"] = alpha
    if spec.has_include_preprocessing:
        kwargs["include_preprocessing"] = True
    backbone = getattr(keras.applications, spec.name)(**kwargs)
    # Renamed afterwards rather than through `name=`: EfficientNetV2 looks its block layout up by
    # `name`. Variable paths do not include the model's name, so weights load either way.
    backbone.name = BACKBONE_LAYER_NAME
    return backbone


def build_backbone(name: str, image_size, weights="none", alpha=None):
    """Build the headless backbone `name` at `image_size` (int or (h, w)) with `weights`.

    Returns `(preprocessing, backbone)`; see the module docstring for both and for `weights`.
    `alpha` is the width multiplier of MobileNetV2/V3 (None: the family's `default_alpha`); other
    families reject one.
    """
    spec = get(name)
    image_size = check_image_size(spec, image_size)
    alpha = check_alpha(spec, alpha)
    weights = "none" if weights is None else str(weights)

    if weights.lower() == "imagenet":
        backbone = _imagenet_backbone(spec, image_size, alpha)
    else:
        try:
            backbone = _construct(spec, image_size, None, alpha)
        except ValueError as e:
            raise UsageError(
                f"cannot build {spec.name} at {image_size[0]}x{image_size[1]} (alpha={alpha}): {e}"
            ) from None
        if weights.lower() != "none":
            load_file_weights(backbone, weights, spec.name + (f" (alpha={alpha})" if spec.has_alpha else ""))
    return make_preprocessing(spec), backbone


def _imagenet_backbone(spec: Family, image_size, alpha):
    try:
        return _construct(spec, image_size, "imagenet", alpha)
    except ValueError as e:  # Keras rejects the combination (e.g. an alpha with no ImageNet weights)
        raise UsageError(
            f"no ImageNet weights for {spec.name} with these settings: {first_line(e)}; use --weights PATH "
            "(a .weights.h5 or .keras backbone) or --weights none"
        ) from None
    except Exception as e:  # keras.utils.get_file raises a bare Exception when the download fails
        raise UsageError(
            f"could not fetch the ImageNet weights for {spec.name} ({type(e).__name__}: {first_line(e)}). Without network "
            "access, pass --weights PATH (a .weights.h5 of this backbone or a .keras file holding one or a model "
            "this pipeline trained), or --weights none to train from scratch; or place the file in ~/.keras/models/"
        ) from None
