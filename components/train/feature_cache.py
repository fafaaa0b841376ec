"""Backbone features computed once, so a frozen head stage trains in seconds per epoch.

While the backbone is frozen (and called with `training=False`) and the stage's input is not
augmented, every epoch pushes the same images through the same function: the backbone's pooled
features are a constant. `extract` computes them in one inference pass; the head stage then fits
the head's own layers (shared with the full model, see `model.head_model`) on those vectors.
What is kept in memory is one float vector per image (1,280 floats for MobileNetV2), not pixels.
"""

import keras
import numpy as np
import tensorflow as tf


def feature_extractor(model_input, pooled_features) -> keras.Model:
    """Raw images -> pooled backbone features, sharing the classifier's layers."""
    return keras.Model(model_input, pooled_features, name="feature_extractor")


def extract(extractor: keras.Model, dataset: tf.data.Dataset):
    """Run `extractor` over an (images, labels) dataset once; returns (features, labels) arrays."""
    forward = tf.function(lambda images: extractor(images, training=False), reduce_retracing=True)  # not eager
    features, labels = [], []
    for images, batch_labels in dataset:
        features.append(np.asarray(forward(images), dtype=np.float32))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(features), np.concatenate(labels)


def as_dataset(features, labels, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of cached features; shuffled per epoch for training, in order for validation."""
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
