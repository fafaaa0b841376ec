"""Keeping BatchNorm's moving statistics in step with weights that train (the "BatchNorm trap").

`keras.applications` builds BatchNorm with momentum 0.999 (MobileNetV2, EfficientNet) or 0.99:
the moving mean/variance average over the last ~1,000 steps. A backbone trained from scratch
changes much faster than that, so after training the moving statistics describe weights long
gone and inference-mode accuracy sits at chance while training accuracy is high (measured in
../shared/weights/card.json). Two remedies, both applied wherever BatchNorm trains:

- `set_momentum`: a lower momentum (0.9: the last ~10 steps) while training;
- `recalibrate`: "precise BN" (Wu & Johnson, "Rethinking Batch in BatchNorm", 2021): after the
  stage, forward training batches through the backbone in training mode with no weight update,
  and set every moving mean/variance to the plain average of the batch statistics.
"""

import keras
import tensorflow as tf

from components.train.stages import is_batchnorm


def batchnorm_layers(model: keras.Model) -> list:
    """Every BatchNorm layer in `model`, nested models included."""
    found = []
    for layer in model.layers:
        if is_batchnorm(layer):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batchnorm_layers(layer))
    return found


def set_momentum(model: keras.Model, momentum: float) -> int:
    """Set the momentum of every BatchNorm layer in `model`; returns how many were changed."""
    layers = batchnorm_layers(model)
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def recalibrate(backbone: keras.Model, preprocessing, images: tf.data.Dataset, max_batches: int) -> int:
    """Recompute the backbone's BatchNorm moving statistics as averages over `max_batches` batches.

    `images` yields raw 0-255 image batches (labels, if present, are ignored). With momentum
    (k-1)/k at the k-th batch, Keras's update `moving = m * moving + (1 - m) * batch` leaves the
    running mean of the k batch statistics in the moving variables. Runs eagerly so the momentum
    change applies on each call. Returns the number of batches used.
    """
    layers = batchnorm_layers(backbone)
    if not layers or max_batches <= 0:
        return 0
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    used = 0
    try:
        for layer in layers:
            layer.trainable = True  # Keras 3 BatchNorm updates its statistics only when trainable
        for batch in images.take(max_batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            used += 1
            for layer in layers:
                layer.momentum = (used - 1) / used
            if preprocessing is not None:
                x = preprocessing(x)
            backbone(x, training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum = momentum
            layer.trainable = trainable
    return used
