"""Batch-level training augmentations: RandAugment, MixUp and CutMix, built from Keras's layers.

Why they run here, after batching, and not in `input.py`'s per-example transform:

- MixUp and CutMix need the whole batch: each image is mixed with another of the batch and their
  one-hot labels in the same proportion (`keras.layers.MixUp`, `keras.layers.CutMix`). When both
  are on, each batch gets one of them, with even odds (timm's `mixup_switch_prob` 0.5).
- Keras's preprocessing layers draw their random numbers from their own seed generator, not from
  a per-element stateless seed, so they run in one *sequential* map over batches: a given seed
  gives the same batches on every run, as `input.make_dataset` promises.
- `keras.layers.RandAugment` computes all 11 of its operations for each of its `num_ops` slots
  and keeps one with `where` (22 image operations per batch; measured here at 86 images/s
  against about 1,000 for one operation, slower than training itself). `RandAugment` below uses
  the same Keras layers but runs only the drawn ones (`tf.switch_case`). As in Keras's layer, the
  operations are drawn once per batch and their strengths per image. The magnitude maps onto
  each operation's range as in the RandAugment paper (Cubuk et al. 2019, and timm's
  `rand_augment_transform`): at magnitude 1, +/-30 degrees of rotation, shear 0.3, translation
  0.45 of the image, contrast/colour/sharpness +/-0.9, 4-bit posterisation; Keras's own layer
  instead rotates by up to 360 * magnitude degrees, which turns a hand sign into another.
"""

from typing import Optional

import keras
import tensorflow as tf

from components.train.config import AugmentConfig

VALUE_RANGE = (0, 255)  # the trainer's images are raw 0-255 floats; the model's preprocessing rescales
# Every layer computes in float32 whatever the global mixed-precision policy: the input pipeline
# feeds float32 images and labels (the model casts), and a bfloat16 layer would reject them.


class RandAugment:
    """`num_ops` operations drawn per batch from the paper's 14 (identity included), at `magnitude`."""

    def __init__(self, num_ops: int, magnitude: float, seed: int):
        m = float(magnitude)
        kw = {"seed": seed, "dtype": "float32"}
        ops = [
            None,  # identity
            keras.layers.AutoContrast(value_range=VALUE_RANGE, dtype="float32"),
            keras.layers.Equalization(value_range=VALUE_RANGE, dtype="float32"),
            keras.layers.RandomRotation(factor=30.0 / 360.0 * m, fill_mode="reflect", **kw),
            keras.layers.Solarization(threshold_factor=(1.0 - m, 1.0), value_range=VALUE_RANGE, **kw),
            keras.layers.RandomColorDegeneration(factor=0.9 * m, value_range=VALUE_RANGE, **kw),
            keras.layers.RandomPosterization(
                factor=max(1, min(8, int(round(8 - 4 * m)))), value_range=VALUE_RANGE, **kw
            ),
            keras.layers.RandomContrast(factor=0.9 * m, value_range=VALUE_RANGE, **kw),
            keras.layers.RandomBrightness(factor=0.5 * m, value_range=VALUE_RANGE, **kw),
            keras.layers.RandomSharpness(factor=0.9 * m, value_range=VALUE_RANGE, **kw),
            keras.layers.RandomShear(x_factor=0.3 * m, y_factor=0.0, **kw),
            keras.layers.RandomShear(x_factor=0.0, y_factor=0.3 * m, **kw),
            keras.layers.RandomTranslation(height_factor=0.0, width_factor=0.45 * m, **kw),
            keras.layers.RandomTranslation(height_factor=0.45 * m, width_factor=0.0, **kw),
        ]
        self.ops = ops
        self.num_ops = num_ops

    def __call__(self, images: tf.Tensor, op_seed: tf.Tensor) -> tf.Tensor:
        """images: float32 [B, H, W, 3] in 0-255; op_seed: int64 [2], the batch's stateless seed."""
        which = tf.random.stateless_uniform([self.num_ops], seed=op_seed, maxval=len(self.ops), dtype=tf.int32)
        for slot in range(self.num_ops):
            branches = [
                (lambda: images) if op is None else (lambda op=op: tf.cast(op(images, training=True), tf.float32))
                for op in self.ops
            ]
            images = tf.switch_case(which[slot], branches)
            images = tf.clip_by_value(images, 0.0, 255.0)
        return images


def _mixer(augment: AugmentConfig, seed: int):
    """A function of (images, one-hot labels, batch seed) mixing the batch, or None when both are off."""
    layers = []
    if augment.mixup:
        layers.append(keras.layers.MixUp(alpha=augment.mixup, seed=seed, dtype="float32"))
    if augment.cutmix:
        layers.append(keras.layers.CutMix(factor=augment.cutmix, seed=seed, dtype="float32"))
    if not layers:
        return None

    def mix(images, labels, batch_seed):
        pick = tf.random.stateless_uniform([], seed=batch_seed, maxval=len(layers), dtype=tf.int32)
        branches = [(lambda layer=layer: _mixed(layer, images, labels)) for layer in layers]
        return tf.switch_case(pick, branches)

    return mix


def _mixed(layer, images, labels):
    out = layer({"images": images, "labels": labels}, training=True)
    return tf.cast(out["images"], tf.float32), tf.cast(out["labels"], tf.float32)


def is_on(augment: AugmentConfig) -> bool:
    return bool(augment.randaugment_ops or augment.mixup or augment.cutmix)


def apply(ds: tf.data.Dataset, augment: AugmentConfig, seed: int) -> tf.data.Dataset:
    """`ds` of (images [B, H, W, 3] 0-255, one-hot labels [B, K]) with `augment`'s batch-level
    augmentations applied, in order RandAugment, then MixUp or CutMix; `ds` itself when all are off."""
    if not is_on(augment):
        return ds
    rand_augment: Optional[RandAugment] = (
        RandAugment(augment.randaugment_ops, augment.randaugment_magnitude, seed) if augment.randaugment_ops else None
    )
    mix = _mixer(augment, seed)

    def batch(batch_seed, element):
        images, labels = element
        batch_seed = tf.stack([batch_seed, tf.constant(7, tf.int64)])
        if rand_augment is not None:
            images = rand_augment(images, batch_seed)
        if mix is not None:
            images, labels = mix(images, labels, batch_seed[::-1])
        images = tf.ensure_shape(images, [None, None, None, 3])
        return images, labels

    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    # Sequential (no num_parallel_calls): the Keras layers' seed generators then advance in order.
    return tf.data.Dataset.zip(seeds, ds).map(batch).prefetch(tf.data.AUTOTUNE)
