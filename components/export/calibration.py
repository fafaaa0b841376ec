"""Calibrating the exported model on the val split: a temperature folded into the logits layer,
and the abstention threshold chosen on the calibrated probabilities.

Why at export, not in training: the temperature is a property of the final weights (after the
last fine-tuning stage and the float32 rebuild), it costs one inference pass over the val split,
and the train step's cache stays valid when only calibration settings change. Why fold it in:
dividing the `head_dense` kernel and bias by T makes softmax(logits / T) the model's own output,
so the SavedModel, every TFLite variant and any client get calibrated probabilities with no
extra op and no sidecar to forget (model layout: components/train/model.py).
"""
import numpy as np
import keras
import tensorflow as tf
from scipy import special

from components.common import confidence
from components.common.errors import DataError
from components.common.model_runners import preprocess
from components.export.config import ExportConfig
from schemas.artifacts import Examples

LOGITS_LAYER = "head_dense"


def _logits_and_labels(model: keras.Model, examples: Examples, image_size) -> tuple:
    """The model's logits and the labels of the whole val split, read 256 records at a time."""
    try:
        logits_layer = model.get_layer(LOGITS_LAYER)
    except ValueError:
        raise DataError(f"the trained model has no {LOGITS_LAYER!r} layer (components/train/model.py layout), "
                        "so no temperature can be folded in: retrain it, or set export.calibrate: false") from None
    to_logits = keras.Model(model.inputs, logits_layer.output)
    forward = tf.function(lambda pixels: to_logits(pixels, training=False), reduce_retracing=True)
    logits, labels = [], []
    for _serialized, images, batch_labels in examples.batches("val"):
        pixels = preprocess(images, image_size)
        logits.extend(forward(pixels[i:i + 64]).numpy() for i in range(0, len(pixels), 64))
        labels.extend(batch_labels)
    if not labels:
        raise DataError(f"the 'val' split in {examples.uri} has no examples: nothing to calibrate on")
    return np.concatenate(logits).astype(np.float64), np.asarray(labels, np.int64)


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Divide the logits layer's kernel and bias by `temperature`, in place."""
    dense = model.get_layer(LOGITS_LAYER)
    dense.set_weights([w / np.float32(temperature) for w in dense.get_weights()])


def calibrate(model: keras.Model, examples: Examples, image_size, config: ExportConfig) -> dict:
    """Fit (and fold into `model`) the temperature, then the abstention threshold, on the val split.

    Returns the model_info.json entries {"calibration": ..., "abstention": ...}; either is None when
    the config turns it off. Val-split NLL and ECE before/after are recorded; the test split's are
    the evaluation's to measure.
    """
    if not config.calibrate and config.abstain_precision is None and config.abstain_coverage is None:
        return {"calibration": None, "abstention": None}
    logits, labels = _logits_and_labels(model, examples, image_size)
    before = special.softmax(logits, axis=1)
    calibration = None
    temperature = 1.0
    if config.calibrate:
        temperature = confidence.fit_temperature(logits, labels)
        fold_temperature(model, temperature)
        after = special.softmax(logits / temperature, axis=1)
        calibration = {
            "method": "temperature_scaling", "temperature": round(temperature, 6), "fitted_on": "val",
            "examples": len(labels), "folded_into": LOGITS_LAYER,
            "val_nll_before": round(confidence.nll(before, labels), 6),
            "val_nll_after": round(confidence.nll(after, labels), 6),
            "val_ece_before": round(confidence.ece(before, labels), 6),
            "val_ece_after": round(confidence.ece(after, labels), 6),
        }
    abstention = None
    if config.abstain_precision is not None or config.abstain_coverage is not None:
        fitted = confidence.fit_threshold(special.softmax(logits / temperature, axis=1), labels, precision=config.abstain_precision,
                                          coverage=config.abstain_coverage)
        abstention = {
            "threshold": fitted["threshold"], "unknown_label": config.unknown_label, "fitted_on": "val",
            "target": ({"precision": config.abstain_precision} if config.abstain_precision is not None
                       else {"coverage": config.abstain_coverage}),
            "target_reached": fitted["reached"], "val_coverage": round(fitted["coverage"], 6),
            "val_accuracy_accepted": None if fitted["accuracy"] is None else round(fitted["accuracy"], 6),
            "examples": len(labels),
        }
    return {"calibration": calibration, "abstention": abstention}
