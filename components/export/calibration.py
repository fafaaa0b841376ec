"""Calibrating the exported model on the val split: a temperature folded into the logits layer,
and the abstention threshold chosen on the calibrated probabilities.

Why at export, not in training: the temperature is a property of the final weights (after the
last fine-tuning stage and the float32 rebuild), it costs one inference pass over the val split,
and the train step's cache stays valid when only calibration settings change. Why fold it in:
dividing the `head_dense` kernel and bias by T makes softmax(logits / T) the model's own output,
so the SavedModel, every TFLite variant and any client get calibrated probabilities with no
extra op and no sidecar to forget (model layout: components/train/model.py).
"""

import keras
import numpy as np
import tensorflow as tf
from scipy import special

from components.common import confidence
from components.common.errors import DataError
from components.common.image_ops import preprocess
from components.common.trained_model import HEAD_DENSE, HEAD_POOL
from components.export import tta
from components.export.config import ExportConfig
from schemas.artifacts import Examples
from schemas.split_reader import batches, sample_split


def _outputs(model: keras.Model, pooled: bool):
    """A function from pixels to (logits, pooled backbone features or logits again), sharing the model's layers."""
    names = (HEAD_DENSE, HEAD_POOL) if pooled else (HEAD_DENSE,)
    try:
        layers = [model.get_layer(name) for name in names]
    except ValueError:
        raise DataError(
            f"the trained model lacks the {' or '.join(map(repr, names))} layer of the trainer's layout "
            "(components/train/model.py), so it cannot be calibrated or checked for inputs far from "
            "the training data: retrain it, or set export.calibrate and export.abstain_far_from_training "
            "to false"
        ) from None
    both = keras.Model(model.inputs, [layers[0].output, layers[-1].output])
    return tf.function(lambda pixels: both(pixels, training=False), reduce_retracing=True)


def _forward(forward, batches, image_size, mirror: bool = False) -> tuple:
    """(logits, pooled features, labels, logits of the mirror images or None) over (serialized,
    encoded images, labels) batches."""
    logits, pooled, labels, mirrored = [], [], [], []
    for _serialized, images, batch_labels in batches:
        pixels = preprocess(images, image_size)
        for i in range(0, len(pixels), 64):
            out = forward(pixels[i : i + 64])
            logits.append(out[0].numpy())
            pooled.append(out[1].numpy())
            if mirror:
                mirrored.append(forward(tta.mirrored(pixels[i : i + 64]))[0].numpy())
        labels.extend(batch_labels)
    return (
        np.concatenate(logits).astype(np.float64),
        np.concatenate(pooled),
        np.asarray(labels, np.int64),
        np.concatenate(mirrored).astype(np.float64) if mirror else None,
    )


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def prototypes(pooled: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Unit-length class means of unit-length pooled features: [classes, features] (zeros for an absent class)."""
    unit = _unit(pooled)
    means = np.stack(
        [unit[labels == c].mean(axis=0) if np.any(labels == c) else np.zeros(unit.shape[1]) for c in range(num_classes)]
    )
    return _unit(means).astype(np.float32)


def similarity(pooled: np.ndarray, class_prototypes: np.ndarray) -> np.ndarray:
    """Cosine similarity of each image's features to the nearest class prototype (what the signature computes)."""
    return (_unit(pooled) @ class_prototypes.T).max(axis=1)


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Divide the logits layer's kernel and bias by `temperature`, in place."""
    dense = model.get_layer(HEAD_DENSE)
    dense.set_weights([w / np.float32(temperature) for w in dense.get_weights()])


def calibrate(
    model: keras.Model, examples: Examples, image_size, num_classes: int, config: ExportConfig, tta_mode: str = "none"
) -> tuple:
    """Fit (and fold into `model`) the temperature, then the abstention thresholds, on the val split.

    The temperature is fitted on single-image logits (so each view's softmax is calibrated); the
    confidence threshold on the probabilities the export serves, averaged over the image and its
    mirror when `tta_mode` is "flip" (components/export/tta.py).

    Returns (model_info.json entries {"calibration": ..., "abstention": ..., "trust_warnings": [...]},
    class prototypes or None). Either of the first two is None when the config turns it off, or when
    the val split holds fewer than `confidence.MIN_CALIBRATION_EXAMPLES` images: a temperature
    fitted on 9 images went to the search's bound (T = 0.05, every answer 0.9999), so then nothing
    is fitted and `trust_warnings` says why (printed here, shown by the report and the model card). Abstention has two parts, both fitted
    on val: a threshold on the calibrated top-1 probability, and (export.abstain_far_from_training)
    a threshold on the cosine similarity of the image's pooled backbone features to the nearest
    class prototype (unit mean of the train split's features, `prototypes`). The second catches
    what softmax confidence cannot: inputs unlike any training image (a texture, a blank frame),
    to which a classifier often gives one class a high probability. Val-split numbers are recorded;
    the test split's are the evaluation's to measure.
    """
    abstain = (config.abstain_precision, config.abstain_coverage) != (None, None)
    if not config.calibrate and not abstain:
        return {"calibration": None, "abstention": None, "trust_warnings": []}, None
    val_size = sum(examples.class_counts("val"))
    if not val_size:
        raise DataError(f"the 'val' split in {examples.uri} has no examples: nothing to calibrate on")
    warnings = []  # what was not fitted because the val split is too small (printed, in the report and card)
    if config.calibrate:
        skipped = confidence.too_few(val_size, "a temperature", "the probabilities are not calibrated (T = 1)")
        warnings += [skipped] if skipped else []
    if abstain:
        skipped = confidence.too_few(val_size, "an abstention threshold", "the model never abstains")
        warnings += [skipped] if skipped else []
        abstain = not skipped
    for warning in warnings:
        print(f"[export] warning: {warning}", flush=True)
    calibrate_now = config.calibrate and val_size >= confidence.MIN_CALIBRATION_EXAMPLES
    if not calibrate_now and not abstain:
        return {"calibration": None, "abstention": None, "trust_warnings": warnings}, None
    forward = _outputs(model, abstain and config.abstain_far_from_training)
    logits, pooled, labels, mirrored = _forward(
        forward, batches(examples, "val"), image_size, mirror=abstain and tta_mode == "flip"
    )
    before = special.softmax(logits, axis=1)
    calibration = None
    temperature = 1.0
    if calibrate_now:
        temperature = confidence.fit_temperature(logits, labels)
        fold_temperature(model, temperature)
        after = special.softmax(logits / temperature, axis=1)
        calibration = {
            "method": "temperature_scaling",
            "temperature": round(temperature, 6),
            "fitted_on": "val",
            "examples": len(labels),
            "folded_into": HEAD_DENSE,
            "val_nll_before": round(confidence.nll(before, labels), 6),
            "val_nll_after": round(confidence.nll(after, labels), 6),
            "val_ece_before": round(confidence.ece(before, labels), 6),
            "val_ece_after": round(confidence.ece(after, labels), 6),
        }
    if not abstain:
        return {"calibration": calibration, "abstention": None, "trust_warnings": warnings}, None
    probabilities = special.softmax(logits / temperature, axis=1)
    if mirrored is not None:
        probabilities = (probabilities + special.softmax(mirrored / temperature, axis=1)) / 2.0
    fitted = confidence.fit_threshold(
        probabilities, labels, precision=config.abstain_precision, coverage=config.abstain_coverage
    )
    accepted = probabilities.max(axis=1) >= fitted["threshold"]
    abstention = {
        "threshold": fitted["threshold"],
        "unknown_label": config.unknown_label,
        "fitted_on": "val",
        "target": (
            {"precision": config.abstain_precision}
            if config.abstain_precision is not None
            else {"coverage": config.abstain_coverage}
        ),
        "target_reached": fitted["reached"],
        "examples": len(labels),
        "far_from_training": None,
    }
    class_prototypes = None
    if config.abstain_far_from_training:
        sample = sample_split(examples, "train", config.prototype_examples, num_classes)
        _, train_pooled, train_labels, _ = _forward(forward, [sample], image_size)
        class_prototypes = prototypes(train_pooled, train_labels, num_classes)
        val_similarity = similarity(pooled, class_prototypes)
        similarity_threshold = float(np.quantile(val_similarity, config.far_val_rejection))
        accepted &= val_similarity >= similarity_threshold
        abstention["far_from_training"] = {
            "similarity_threshold": round(similarity_threshold, 6),
            "prototypes_from": "train",
            "prototype_examples": len(train_labels),
            "val_rejection_target": config.far_val_rejection,
        }
    chosen = confidence.selective(probabilities, labels, accepted)
    abstention.update(
        {
            "val_coverage": round(chosen["coverage"], 6),
            "val_accuracy_accepted": None if chosen["accuracy"] is None else round(chosen["accuracy"], 6),
        }
    )
    return {"calibration": calibration, "abstention": abstention, "trust_warnings": warnings}, class_prototypes
