"""The pixels a TFLite or ONNX model takes, from image files as cameras write them: the function the
Python clients in docs/export.md call.

A pixels-in model cannot decode, so its client does. Decoding with Pillow
(`Image.open(path).convert("RGB")`) serves a portrait phone photo sideways and a transparent cut-out
on whatever colour its transparent pixels hide, since Pillow leaves EXIF orientation and compositing
to the caller; the model was trained on the ingest's upright, white-backed pixels. This gives a
client what `pipeline.predict` and `pipeline.validate` feed those models: the serving signatures'
own decoding and resize (`image_ops.preprocess`), after the CLIs' conversion of the formats
TensorFlow does not decode (TIFF, `opened_model.served_bytes`).
"""

import numpy as np
import tensorflow as tf

from components.common.image_ops import preprocess
from pipeline.opened_model import served_bytes


def model_input(images: list, image_size) -> np.ndarray:
    """Image paths (on any filesystem TensorFlow reads) or encoded bytes -> float32 [n, h, w, 3],
    RGB 0-255 at `image_size` (h, w), decoded by the ingest's rules (EXIF orientation, transparency
    on white, first frame). An image no decoder reads raises tf.errors.InvalidArgumentError."""
    encoded = []
    for image in images:
        if isinstance(image, bytes):
            encoded.append(image)
        else:
            with tf.io.gfile.GFile(image, "rb") as f:
                encoded.append(f.read())
    return preprocess([served_bytes(data) for data in encoded], image_size)
