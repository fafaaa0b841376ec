"""Pretrained backbone weights from a file: a `.weights.h5` of the backbone, or a `.keras` file holding
the backbone or a classifier this pipeline trained (its layer named "backbone").

Shared by the trainer (it starts from them) and the audit (it embeds with the backbone as it was
before fine-tuning, components/audit/embeddings.py).
"""

import warnings

import keras
import tensorflow as tf

from components.common.errors import UsageError

BACKBONE_LAYER_NAME = "backbone"


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


def load_file_weights(backbone: keras.Model, path: str, wanted: str) -> None:
    """Fill `backbone` from a `.weights.h5` or `.keras` file; UsageError when it does not fit.

    wanted: the backbone as the error messages name it ("MobileNetV2 (alpha=0.35)")."""
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
                f"weights file {path} does not fit the backbone {wanted}: {first_line(e)}. It must "
                "be saved from the same architecture and width (backbone.save_weights)"
            ) from None
        return
    if not path.endswith(".keras"):
        raise UsageError(f"weights file {path}: expected a .weights.h5 or .keras file (or imagenet / none)")
    try:
        saved = keras.saving.load_model(path, compile=False)
    except Exception as e:
        raise UsageError(f"cannot read the Keras model file {path}: {type(e).__name__}: {first_line(e)}") from None
    source = _find_backbone(saved)
    mismatch = _first_mismatch(source, backbone)
    if mismatch:
        raise UsageError(
            f"weights file {path} holds a different architecture ({source.name!r}) than the backbone "
            f"{wanted}: {mismatch}. Choose the backbone (and alpha) the file was saved from"
        )
    backbone.set_weights(source.get_weights())


def first_line(error: Exception, limit: int = 300) -> str:
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
