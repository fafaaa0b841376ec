"""Test-time augmentation folded into the exported graph: the mean of the softmax over the image
and its mirror image (`export.tta`).

Why in the graph and not only in the evaluation: the gate must judge what is served. With TTA in
the SavedModel and every TFLite file, the evaluator, TF Serving, `pipeline.predict` and an
on-device client all get the same averaged probabilities, and the parity check covers it.
Measured on the sign-language folder (benchmarks/small_data.py, docs/benchmarks.md, "Small-data levers"): test
accuracy 0.824 -> 0.873 (McNemar p = 0.02) for the full folder, unchanged with a fifth of it.
The price is two forward passes per image. `auto` averages only when the training flipped images
(`train.augment.flip` in a stage with augmentation): a model never shown mirror images has no
reason to read them the same (text, digits drawn in one orientation, left/right anatomy).
"""

import keras
import tensorflow as tf


def resolve(mode: str, train_history: dict | None) -> str:
    """`flip` or `none`: `auto` is `flip` when the training augmented with flips in some stage."""
    if mode != "auto":
        return mode
    config = (train_history or {}).get("config") or {}
    flips = bool((config.get("augment") or {}).get("flip"))
    stages = config.get("stages")
    augmented = any(s.get("augment") for s in stages) if stages else True  # the default stages augment
    return "flip" if flips and augmented else "none"


def mirrored(pixels: tf.Tensor) -> tf.Tensor:
    """[batch, height, width, channels] reversed along the width."""
    return tf.reverse(pixels, axis=[2])


def with_mirror(model: keras.Model, pixels: tf.Tensor, probabilities: tf.Tensor, mode: str) -> tf.Tensor:
    """`probabilities` (the model's on `pixels`, computed by the caller with whatever else it needed
    from that pass) averaged with the mirror image's when `mode` is "flip"."""
    if mode == "none":
        return probabilities
    return (probabilities + model(mirrored(pixels), training=False)) / 2.0


def averaged(model: keras.Model, mode: str):
    """A function pixels -> probabilities: `model`'s, or with `flip` the mean over the image and its mirror."""
    return lambda pixels: with_mirror(model, pixels, model(pixels, training=False), mode)
