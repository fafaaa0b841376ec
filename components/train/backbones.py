"""The backbone registry: which `keras.applications` models the trainer offers, and how to build one.

API (the rest of the trainer assembles the classifier from these):

- `build_backbone(name, image_size, weights="none", alpha=None) -> (preprocessing, backbone)`:
  `preprocessing` is a Keras layer named "preprocessing" mapping raw RGB 0-255 to what the weights
  expect, or None when the backbone has its preprocessing built in (EfficientNet, EfficientNetV2,
  ConvNeXt and MobileNetV3 take 0-255 and normalise inside); `backbone` is the headless
  `keras.applications` model named "backbone", output a feature map [B, h, w, C]. The classifier
  is then `inputs (0-255) -> preprocessing -> backbone(training=False) -> head`, so the saved
  model takes raw pixels and a warm start finds the backbone by its name.
- `get_spec(name)` -> `BackboneSpec` (constructor, default and minimum input size, preprocessing),
  `backbone_names()`, `BACKBONES`. Names are Keras's (`MobileNetV2`, `EfficientNetV2S`, ...) and
  are matched ignoring case, `_` and `-` (`mobilenet_v2` works).

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
import dataclasses
import warnings
from typing import Callable, Optional

import keras
import tensorflow as tf

from components.common.errors import UsageError
from components.common.layers import CaffePreprocessing

BACKBONE_LAYER_NAME = "backbone"
PREPROCESSING_LAYER_NAME = "preprocessing"

BUILTIN = "built into the model (takes 0-255)"
SCALE_TO_PLUS_MINUS_ONE = "scale 0-255 to [-1, 1]"
CAFFE = "caffe: RGB->BGR, minus the ImageNet channel means"


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """One registry entry: how to build the family and what its weights expect."""

    name: str
    constructor: Callable
    default_size: int  # the size its ImageNet weights were trained at
    min_size: int  # the smallest input Keras accepts for it
    preprocessing: str  # BUILTIN, SCALE_TO_PLUS_MINUS_ONE or CAFFE
    module: str  # keras.applications.<module> holds its preprocess_input
    has_alpha: bool = False  # takes a width multiplier
    has_include_preprocessing: bool = False  # constructor takes include_preprocessing


def _spec(name, default_size, preprocessing, module, min_size=32, **kwargs) -> BackboneSpec:
    return BackboneSpec(name, getattr(keras.applications, name), default_size, min_size, preprocessing, module, **kwargs)


BACKBONES = {
    spec.name: spec
    for spec in [
        *[_spec(f"EfficientNetB{i}", size, BUILTIN, "efficientnet")
          for i, size in enumerate([224, 240, 260, 300, 380, 456, 528, 600])],
        *[_spec(f"EfficientNetV2{v}", size, BUILTIN, "efficientnet_v2", has_include_preprocessing=True)
          for v, size in [("B0", 224), ("B1", 240), ("B2", 260), ("B3", 300), ("S", 384)]],
        _spec("MobileNetV2", 224, SCALE_TO_PLUS_MINUS_ONE, "mobilenet_v2", has_alpha=True),
        _spec("MobileNetV3Small", 224, BUILTIN, "mobilenet_v3", has_alpha=True, has_include_preprocessing=True),
        _spec("MobileNetV3Large", 224, BUILTIN, "mobilenet_v3", has_alpha=True, has_include_preprocessing=True),
        _spec("ResNet50V2", 224, SCALE_TO_PLUS_MINUS_ONE, "resnet_v2"),
        _spec("VGG16", 224, CAFFE, "vgg16"),
        _spec("ConvNeXtTiny", 224, BUILTIN, "convnext", has_include_preprocessing=True),
        _spec("Xception", 299, SCALE_TO_PLUS_MINUS_ONE, "xception", min_size=71),
    ]
}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def backbone_names() -> list:
    """Every valid backbone name, in registry order (for help texts and error messages)."""
    return list(BACKBONES)


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for `name` (case, `_` and `-` ignored); UsageError listing the valid names."""
    by_key = {_key(n): spec for n, spec in BACKBONES.items()}
    spec = by_key.get(_key(str(name)))
    if spec is None:
        raise UsageError(f"unknown backbone {name!r}: choose one of {', '.join(backbone_names())}")
    return spec


def check_image_size(spec: BackboneSpec, image_size) -> tuple:
    """`image_size` as (height, width); UsageError when either side is below the family's minimum."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    height, width = (int(s) for s in image_size)
    if min(height, width) < spec.min_size:
        raise UsageError(
            f"image size {height}x{width} is too small for {spec.name}: it needs at least "
            f"{spec.min_size}x{spec.min_size} (its weights were trained at {spec.default_size})"
        )
    return height, width


def make_preprocessing(spec: BackboneSpec) -> Optional[keras.layers.Layer]:
    """The layer that turns raw 0-255 RGB into what `spec`'s weights expect (None: built in)."""
    if spec.preprocessing == SCALE_TO_PLUS_MINUS_ONE:
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=PREPROCESSING_LAYER_NAME)
    if spec.preprocessing == CAFFE:
        return CaffePreprocessing(name=PREPROCESSING_LAYER_NAME)
    return None


def _construct(spec: BackboneSpec, image_size, weights, alpha):
    kwargs = dict(include_top=False, weights=weights, input_shape=(*image_size, 3))
    if spec.has_alpha:
        kwargs["alpha"] = 1.0 if alpha is None else float(alpha)
    if spec.has_include_preprocessing:
        kwargs["include_preprocessing"] = True
    backbone = spec.constructor(**kwargs)
    # Renamed afterwards rather than through `name=`: EfficientNetV2 looks its block layout up by
    # `name`. Variable paths do not include the model's name, so weights load either way.
    backbone.name = BACKBONE_LAYER_NAME
    return backbone


def build_backbone(name: str, image_size, weights="none", alpha=None):
    """Build the headless backbone `name` at `image_size` (int or (h, w)) with `weights`.

    Returns `(preprocessing, backbone)`; see the module docstring for both and for `weights`.
    `alpha` is the width multiplier of MobileNetV2/V3 (default 1.0); other families reject it.
    """
    spec = get_spec(name)
    image_size = check_image_size(spec, image_size)
    if alpha is not None and not spec.has_alpha:
        raise UsageError(f"alpha={alpha}: only MobileNetV2, MobileNetV3Small and MobileNetV3Large take a width multiplier")
    if alpha is not None and not 0.0 < float(alpha) <= 2.0:
        raise UsageError(f"alpha={alpha}: the width multiplier must be in (0, 2] (usual values: 0.35, 0.5, 0.75, 1.0, 1.3)")
    weights = "none" if weights is None else str(weights)

    if weights.lower() == "imagenet":
        backbone = _imagenet_backbone(spec, image_size, alpha)
    else:
        try:
            backbone = _construct(spec, image_size, None, alpha)
        except ValueError as e:
            raise UsageError(f"cannot build {spec.name} at {image_size[0]}x{image_size[1]} (alpha={alpha}): {e}") from None
        if weights.lower() != "none":
            _load_file_weights(backbone, weights, spec, alpha)
    return make_preprocessing(spec), backbone


def _imagenet_backbone(spec: BackboneSpec, image_size, alpha):
    try:
        return _construct(spec, image_size, "imagenet", alpha)
    except ValueError as e:  # Keras rejects the combination (e.g. an alpha with no ImageNet weights)
        raise UsageError(f"no ImageNet weights for {spec.name} with these settings: {_first_line(e)}; use --weights PATH "
                         "(a .weights.h5 or .keras backbone) or --weights none") from None
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
    expected = {".h5": (_HDF5_SIGNATURE, "an HDF5 file (backbone.save_weights)"),
                ".keras": (_ZIP_SIGNATURE, "a zip archive (model.save)")}
    for suffix, (signature, what) in expected.items():
        if path.endswith(suffix):
            with tf.io.gfile.GFile(path, "rb") as f:
                head = f.read(len(signature))
            if head != signature:
                raise UsageError(f"weights file {path} is damaged or not a {suffix} file: a {suffix} file is {what}, "
                                 f"this one starts with {head!r}. Save it again, or pass another file")


def _load_file_weights(backbone: keras.Model, path: str, spec: BackboneSpec, alpha) -> None:
    """Fill `backbone` from a `.weights.h5` or `.keras` file; UsageError when it does not fit."""
    wanted = f"{spec.name}" + (f" (alpha={1.0 if alpha is None else alpha})" if spec.has_alpha else "")
    if not tf.io.gfile.exists(path):
        raise UsageError(f"weights file {path} not found: pass an existing .weights.h5 or .keras file, "
                         "--weights imagenet or --weights none")
    _check_file_format(path)
    if path.endswith(".weights.h5"):
        try:
            with warnings.catch_warnings():  # Keras warns once per unmatched variable before it raises
                warnings.simplefilter("ignore")
                backbone.load_weights(path)
        except Exception as e:
            raise UsageError(f"weights file {path} does not fit the backbone {wanted}: {_first_line(e)}. It must "
                             "be saved from the same architecture and width (backbone.save_weights)") from None
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
        raise UsageError(f"weights file {path} holds a different architecture ({source.name!r}) than the backbone "
                         f"{wanted}: {mismatch}. Choose the backbone (and alpha) the file was saved from")
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
