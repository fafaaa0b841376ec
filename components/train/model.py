"""The classifier: the backbone's own preprocessing, the backbone, and a small new head.

Layout of every model this trainer writes (the exporter and a later warm start rely on it):

    input "image" float32 [B, H, W, 3], raw RGB 0-255
      -> the backbone's preprocessing layer(s) (from `backbones.build_backbone`)
      -> the backbone: the model's only nested `keras.Model` layer
      -> "head_pool" GlobalAveragePooling2D -> "head_dropout" Dropout -> "head_dense" Dense(logits)
      -> "probabilities" softmax, always float32 (also under mixed precision)

A pretrained backbone is called with `training=False`, as the Keras transfer-learning guide does:
its BatchNorm layers then use their moving statistics in every stage, even once the layers
around them are unfrozen, so fine-tuning cannot wreck statistics learned on millions of images.
A backbone trained from scratch (weights "none") is called without it, so its BatchNorm layers
learn (see `batchnorm.py`).

The head layers are kept in a `Head` record so the frozen-backbone stage can train the very same
layer objects on cached features (`feature_cache.py`).
"""

import dataclasses

import keras

from components.common.trained_model import HEAD_DENSE, HEAD_DROPOUT, HEAD_POOL, PROBABILITIES


@dataclasses.dataclass
class Head:
    """The head's layers; calling it maps a backbone feature map to float32 class probabilities."""

    pool: keras.layers.Layer
    dropout: keras.layers.Layer
    dense: keras.layers.Layer
    softmax: keras.layers.Layer

    def __call__(self, features):
        return self.on_pooled(self.pool(features))

    def on_pooled(self, pooled):
        """The head after pooling: the part trained on cached (pooled) backbone features."""
        return self.softmax(self.dense(self.dropout(pooled)))


def build_head(num_classes: int, dropout: float, seed: int = 0) -> Head:
    return Head(
        pool=keras.layers.GlobalAveragePooling2D(name=HEAD_POOL),
        dropout=keras.layers.Dropout(dropout, seed=seed, name=HEAD_DROPOUT),
        dense=keras.layers.Dense(num_classes, name=HEAD_DENSE),
        softmax=keras.layers.Activation("softmax", dtype="float32", name=PROBABILITIES),
    )


def assemble(preprocessing, backbone: keras.Model, head: Head, image_size: int, *, backbone_trains_bn: bool):
    """The full classifier: raw 0-255 images in, float32 softmax out.

    backbone_trains_bn: False for a pretrained backbone (called with `training=False`, BatchNorm
    always in inference mode); True when it trains from scratch.
    """
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")
    x = inputs
    if preprocessing is not None:
        x = preprocessing(x)
    x = backbone(x) if backbone_trains_bn else backbone(x, training=False)
    return keras.Model(inputs, head(x), name="classifier")


def head_model(head: Head, feature_dim: int) -> keras.Model:
    """A model over pooled backbone features that shares the head's Dropout/Dense/softmax layers."""
    inputs = keras.Input(shape=(feature_dim,), dtype="float32", name="pooled_features")
    return keras.Model(inputs, head.on_pooled(inputs), name="head_on_features")
