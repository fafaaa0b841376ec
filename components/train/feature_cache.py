"""Backbone features computed once, so a frozen head stage trains in seconds per epoch.

While the backbone is frozen (and called with `training=False`) and the stage's input is not
augmented, every epoch pushes the same images through the same function: the backbone's pooled
features are a constant. `extract` computes them in one inference pass; the head stage then fits
the head's own layers (shared with the full model, see `model.head_model`) on those vectors.
What is kept in memory is one float vector per image (1,280 floats for MobileNetV2), not pixels.

Across runs (`extract_kept`): the vectors are a function of the image and of the backbone's weights
alone, so a nightly full retrain on a folder that grew by 1% needs the backbone pass for that 1%
only. They are kept per image in the pipeline's per-image results (components/common/
image_results.py), under the digest of the extractor's weights, its input size and dtype policy:
another backbone, weights file, size or precision is another computation, never a stale hit.
"""

import hashlib

import keras
import numpy as np
import tensorflow as tf

from components.common.image_ops import decode_and_resize
from components.common.image_results import ImageResults, record_keys, records_at
from schemas import feature_spec


def feature_extractor(model_input, pooled_features) -> keras.Model:
    """Raw images -> pooled backbone features, sharing the classifier's layers."""
    return keras.Model(model_input, pooled_features, name="feature_extractor")


def _forward(extractor: keras.Model):
    return tf.function(lambda images: extractor(images, training=False), reduce_retracing=True)  # not eager


def extract(extractor: keras.Model, dataset: tf.data.Dataset):
    """Run `extractor` over an (images, labels) dataset once; returns (features, labels) arrays."""
    forward = _forward(extractor)
    features, labels = [], []
    for images, batch_labels in dataset:
        features.append(np.asarray(forward(images), dtype=np.float32))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(features), np.concatenate(labels)


def about(extractor: keras.Model, image_size: int) -> dict:
    """What computed the features: the digest of every weight the extractor holds (preprocessing and
    backbone), its input size and the dtype policy it ran under."""
    digest = hashlib.sha256()
    for weight in extractor.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return {
        "head_features": digest.hexdigest(),
        "image_size": int(image_size),
        "dtype_policy": keras.config.dtype_policy().name,
    }


def extract_kept(extractor: keras.Model, shards: list, image_size: int, batch_size: int, keep, kept: ImageResults):
    """(features, integer labels, how many were reused) of the records of `shards` (only those whose
    sha256 is in `keep`, unless None), running the extractor only on images `kept` does not hold.

    The pixels are the evaluation pipeline's (`decode_and_resize`), as `extract` gets them from the
    trainer's unaugmented dataset; the order is the shards', which a shuffled head stage ignores."""
    keys, fields = record_keys(shards, feature_spec("image", "label", "sha256"))
    rows = [i for i, digest in enumerate(fields["sha256"]) if keep is None or digest.decode() in keep]
    known = kept.lookup([keys[i] for i in rows])
    todo = [i for i in rows if keys[i] not in known]
    if todo:
        size = (int(image_size), int(image_size))
        spec = feature_spec("image")
        images = (
            records_at(shards, todo)
            .map(
                lambda record: decode_and_resize(tf.io.parse_single_example(record, spec)["image"], size),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        forward = _forward(extractor)
        computed = np.concatenate([np.asarray(forward(batch), dtype=np.float32) for batch in images])
        kept.add([keys[i] for i in todo], features=computed)
        for row, i in enumerate(todo):
            known[keys[i]] = {"features": computed[row]}
    features = np.stack([known[keys[i]]["features"] for i in rows]).astype(np.float32)
    return features, fields["label"][rows].astype(np.int64), len(rows) - len(todo)


def as_dataset(features, labels, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of cached features; shuffled per epoch for training, in order for validation."""
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
