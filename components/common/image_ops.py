"""The evaluation/serving image preprocessing, shared by the trainer and the exporter.

One function turns encoded bytes into the model's input, so what the model sees when it is
evaluated during training is exactly what it sees behind the serving signatures (no skew), and
it applies the ingest's normalisation (components/common/camera_decode.py), so a camera's file
sent to the server gives what its ingested record gives. Models take raw RGB in 0-255 as float32;
the backbone's own normalisation is inside the model.
"""

import tensorflow as tf

from components.common import camera_decode, image_limits

# What the prediction CLIs take as an image file in a folder (the ingest tells formats by content).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Decode one JPEG/PNG/GIF/BMP/WebP string to upright uint8 RGB [h, w, 3] by the ingest's rules
    (EXIF orientation, transparency on white, first frame of animations)."""
    return camera_decode.decode_normalised(encoded, image_limits.format_index(encoded))


def resize_for_model(image: tf.Tensor, image_size) -> tf.Tensor:
    """Resize a uint8/float [h, w, 3] (or batched) image to `image_size` (h, w), float32 0-255."""
    image = tf.image.resize(tf.cast(image, tf.float32), image_size, method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def decode_and_resize(encoded: tf.Tensor, image_size) -> tf.Tensor:
    """Evaluation preprocessing of one encoded image: decode, resize, float32 0-255 [h, w, 3]."""
    return resize_for_model(decode_image(encoded), image_size)


def preprocess(images: list, image_size):
    """Encoded bytes -> float32 [n, h, w, 3] in 0-255 through `decode_and_resize` (a numpy array).

    What every pixels-in model (TFLite, ONNX) is fed by the gate, the parity check and the CLIs.
    Decoded by tf.data in parallel (an eager `tf.map_fn` over 5,000 images took 12 s, one core).
    """
    import numpy as np

    size = tuple(int(x) for x in image_size)
    if not len(images):
        return np.zeros((0, *size, 3), np.float32)
    dataset = (
        tf.data.Dataset.from_tensor_slices(tf.constant(images, tf.string))
        .map(lambda b: decode_and_resize(b, size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(256)
    )
    return np.concatenate([batch.numpy() for batch in dataset])
