"""TFLite variants of the float32 model: float32, float16, dynamic-range and full-integer int8.

Every variant is converted from one frozen concrete function of the float32 rebuild, taking
what the Keras model takes (raw RGB 0-255, [batch, h, w, 3]). Tracing and freezing once costs
about 1 s of CPU for MobileNetV2; `from_keras_model`/`from_saved_model` re-export or reload
the model for each variant (about 7 s of CPU each, 20-30 s wall on 2 busy cores).
The int8 calibrator sees train-split images through the shared serving preprocessing.
"""

import keras
import numpy as np
import tensorflow as tf

# Private API, on purpose: no public TensorFlow function folds a concrete function's variables into
# constants, and `TFLiteConverter.from_concrete_functions` without them needs a trackable object
# (the deprecated path that re-saves the model per variant). tests/test_private_apis.py fails
# loudly if it moves.
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from components.export import tta


def frozen_function(model: keras.Model, image_size, tta_mode: str = "none"):
    """The model (with `tta_mode`'s averaging, components/export/tta.py) as a concrete function with
    its weights folded in as constants (dynamic batch)."""
    fn = tf.function(
        tta.averaged(model, tta_mode),
        input_signature=[tf.TensorSpec([None, *image_size, 3], tf.float32, name="pixels")],
    )
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def convert(frozen, variant: str, representative: np.ndarray | None = None, int8_io: str = "uint8") -> bytes:
    """One TFLite flatbuffer. `representative` (float32 0-255 images) is needed for int8."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io == "uint8":
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
    elif variant != "float32":
        raise ValueError(f"unknown TFLite variant {variant!r}")
    return converter.convert()
