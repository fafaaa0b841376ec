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

import warnings
from typing import Optional

import keras
import tensorflow as tf

from components.common.errors import UsageError
from components.common.layers import CaffePreprocessing
from components.train.families import CAFFE, SCALE_TO_PLUS_MINUS_ONE, Family, check_alpha, check_image_size, get

BACKBONE_LAYER_NAME = "backbone"
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
            _load_file_weights(backbone, weights, spec, alpha)
    return make_preprocessing(spec), backbone


def _imagenet_backbone(spec: Family, image_size, alpha):
    try:
        return _construct(spec, image_size, "imagenet", alpha)
    except ValueError as e:  # Keras rejects the combination (e.g. an alpha with no ImageNet weights)
        raise UsageError(
            f"no ImageNet weights for {spec.name} with these settings: {_first_line(e)}; use --weights PATH "
            "(a .weights.h5 or .keras backbone) or --weights none"
        ) from None
    except Exception as e:  # keras.utils.get_file raises a bare Exception when the download fails
        raise UsageError(
            f"could not fetch the ImageNet weights for {spec.name} ({type(e).__name__}: {_first_line(e)}). Without network "
            "access, pass --weights PATH (a .weights.h5 of this backbone or a .keras file holding one or a model "
            "this pipeline trained), or --weights none to train from scratch; or place the file in ~/.keras/models/"
        ) from None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


def _check_file_format(path: str) -> None:
    """A damaged weights file says so (Keras reports a corrupt .keras file as "File not found")."""
    expected = {
        ".h5": (_HDF5_SIGNATURE, "an HDF5 file (backbone.save_weights)"),
        ".keras": (_ZIP_SIGNATURE, "a zip archive (model.save)"),
    }
    for suffix, (signature, what) in expected.items():
        if path.endswith(suffix):
            with tf.io.gfile.GFile(path, "rb") as f:
                head = f.read(len(signature))
            if head != signature:
                raise UsageError(
                    f"weights file {path} is damaged or not a {suffix} file: a {suffix} file is {what}, "
                    f"this one starts with {head!r}. Save it again, or pass another file"
                )


def _load_file_weights(backbone: keras.Model, path: str, spec: Family, alpha) -> None:
    """Fill `backbone` from a `.weights.h5` or `.keras` file; UsageError when it does not fit."""
    wanted = f"{spec.name}" + (f" (alpha={alpha})" if spec.has_alpha else "")
    if not tf.io.gfile.exists(path):
        raise UsageError(
            f"weights file {path} not found: pass an existing .weights.h5 or .keras file, "
            "--weights imagenet or --weights none"
        )
    _check_file_format(path)
    if path.endswith(".weights.h5"):
        try:
            with warnings.catch_warnings():  # Keras warns once per unmatched variable before it raises
                warnings.simplefilter("ignore")
                backbone.load_weights(path)
        except Exception as e:
            raise UsageError(
                f"weights file {path} does not fit the backbone {wanted}: {_first_line(e)}. It must "
                "be saved from the same architecture and width (backbone.save_weights)"
            ) from None
        return
    if not path.endswith(".keras"):
        raise UsageError(f"weights file {path}: expected a .weights.h5 or .keras file (or imagenet / none)")
    try:
        saved = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise UsageError(f"cannot read the Keras model file {path}: {type(e).__name__}: {_first_line(e)}") from None
    source = _find_backbone(saved)
    mismatch = _first_mismatch(source, backbone)
    if mismatch:
        raise UsageError(
            f"weights file {path} holds a different architecture ({source.name!r}) than the backbone "
            f"{wanted}: {mismatch}. Choose the backbone (and alpha) the file was saved from"
        )
    backbone.set_weights(source.get_weights())


def _first_line(error: Exception, limit: int = 300) -> str:
    """Keras's loading errors can dump whole weight arrays; keep the message readable."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _find_backbone(model: keras.Model) -> keras.Model:
    """The backbone inside a model this pipeline trained (layer "backbone"), else the model itself."""
    for layer in getattr(model, "layers", []):
        if layer.name == BACKBONE_LAYER_NAME and isinstance(layer, keras.Model):
            return layer
    return model


def _first_mismatch(source: keras.Model, target: keras.Model) -> str:
    """Describe the first weight that differs in shape between two models ("" when all match)."""
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        return f"the file has {len(src)} weight tensors, the backbone {len(dst)}"
    for s, d in zip(src, dst):
        if tuple(s.shape) != tuple(d.shape):
            return f"weight {s.path} has shape {tuple(s.shape)} where the backbone's {d.path} has {tuple(d.shape)}"
    return ""
