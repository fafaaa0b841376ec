"""TFLite variants of the float32 model: float32, float16, dynamic-range and full-integer int8.

Conversion starts from the float32 rebuild (`from_keras_model`, which freezes its variables),
so every variant takes the same input as the Keras model (raw RGB 0-255, [batch, h, w, 3]).
The int8 calibrator sees train-split images through the shared serving preprocessing.
"""
import contextlib
import io

import keras
import numpy as np
import tensorflow as tf




def convert(model: keras.Model, variant: str, representative: np.ndarray | None = None,
            int8_io: str = "uint8") -> bytes:
    """One TFLite flatbuffer. `representative` (float32 0-255 images) is needed for int8."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
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
    with contextlib.redirect_stdout(io.StringIO()):  # from_keras_model prints its temporary export
        return converter.convert()
