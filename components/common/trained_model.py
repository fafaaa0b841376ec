"""The trained model's contract with the steps that read it: its head's layer names, how
`model.keras` is loaded, and its rebuild under a float32 policy.

The train step builds the head with these names (components/train/model.py); export folds the
calibration temperature into HEAD_DENSE and reads HEAD_POOL's features for the far-from-training
check, the audit embeds images with HEAD_POOL. A model trained with mixed precision computes in
float16 and does not convert to TFLite cleanly; rebuilding the same architecture with every
layer's dtype policy set to float32 and copying the (float32) weights over gives the same function
in full precision.
"""

import importlib.util

import keras

from components.common.errors import DataError

# The head, in order: backbone features -> HEAD_POOL -> HEAD_DROPOUT -> HEAD_DENSE (logits) -> PROBABILITIES
HEAD_POOL, HEAD_DROPOUT, HEAD_DENSE, PROBABILITIES = "head_pool", "head_dropout", "head_dense", "probabilities"


def _register_custom_layers() -> None:
    """Import the project's custom layers (components/common/layers.py) so model.keras can load."""
    if importlib.util.find_spec("components.common.layers") is not None:
        importlib.import_module("components.common.layers")


def load_model(path: str) -> keras.Model:
    _register_custom_layers()
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which and why
        raise DataError(f"cannot load the trained model {path}: {e}. Re-run the train step.") from e


def _force_float32(config):
    """A copy of a serialized Keras config with every dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" or config.get("class_name") == "DTypePolicyFloat8":
            return {**config, "class_name": "DTypePolicy", "config": {"name": "float32"}}
        return {
            k: ("float32" if k == "dtype" and isinstance(v, str) and v.startswith("mixed_") else _force_float32(v))
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [_force_float32(v) for v in config]
    return config


def _all_layers(layer):
    """Every layer of a model, nested models' layers included (public `layers`, walked recursively)."""
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _all_layers(child)


def float32_rebuild(model: keras.Model) -> keras.Model:
    """The same architecture and weights with every layer computing in float32."""
    if all(layer.dtype_policy.name == "float32" for layer in _all_layers(model)):
        return model
    config = _force_float32(keras.saving.serialize_keras_object(model))
    rebuilt = keras.saving.deserialize_keras_object(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt
