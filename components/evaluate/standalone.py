"""Evaluating one model of any form against thresholds, outside the pipeline (`pipeline.validate`).

Same metrics (TFMA) and the same value checks as the gate, on an ingested split or on a raw
folder of class subfolders, for a SavedModel, an export, a pushed version or a .tflite file.
"""

import os
import time

import numpy as np
import tensorflow as tf

from components.common.errors import DataError, tensorflow_cause
from components.common.image_ops import IMAGE_EXTENSIONS
from components.common.publish import write_json
from components.evaluate import gate, tfma_metrics
from components.evaluate.config import EvaluateConfig
from components.evaluate.evaluator import EvaluateResult
from schemas.artifacts import Examples, ModelBlessing
from schemas.split_reader import read_split


def _folder_images(folder: str, labels: list):
    """Encoded images and labels from `folder/<class name>/*` (class names must be the model's)."""
    images, y = [], []
    classes = sorted(
        name.rstrip("/") for name in tf.io.gfile.listdir(folder) if tf.io.gfile.isdir(os.path.join(folder, name))
    )
    unknown = [c for c in classes if c not in labels]
    if unknown:
        raise DataError(f"{folder}: class folders {unknown} are not classes of the model ({labels})")
    for name in classes:
        for file in sorted(tf.io.gfile.listdir(os.path.join(folder, name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                with tf.io.gfile.GFile(os.path.join(folder, name, file), "rb") as f:
                    images.append(f.read())
                y.append(labels.index(name))
    if not images:
        raise DataError(f"{folder}: no images found; expected {folder}/<class name>/<image files>")
    return images, np.asarray(y, np.int64)


def load_data(data: str, split: str, labels: list):
    """(encoded images, labels in the model's order) from an ingest directory's split or a raw folder."""
    if not tf.io.gfile.isdir(data):
        raise DataError(f"test data {data} is not a directory: give an ingest output or a folder of class folders")
    examples = Examples(data)
    if examples.exists(Examples.LABELS) and tf.io.gfile.isdir(examples.path(Examples.DATA)):
        names = examples.labels()
        unknown = [n for n in names if n not in labels]
        if unknown:
            raise DataError(f"{data}: classes {unknown} are not classes of the model ({labels})")
        _, images, y = read_split(examples, split)
        return images, np.asarray([labels.index(names[i]) for i in y], np.int64)
    return _folder_images(data, labels)


def _scored(model, images: list):
    """The model's probabilities for every image, or a DataError listing the images it cannot score (a
    corrupt file, or one over the SavedModel's pixel budget, export.max_image_pixels), found one by one
    once a batch fails, so the user learns which to remove or downscale."""
    try:
        return model.predict_encoded(images)
    except tf.errors.InvalidArgumentError:
        pass
    refused = []
    for i, image in enumerate(images):
        try:
            model.predict_encoded([image])
        except tf.errors.InvalidArgumentError as e:
            refused.append(f"test image {i}: {tensorflow_cause(e.message)}")
    shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
    raise DataError(
        f"the model cannot score {len(refused)} of the {len(images)} test images ({shown}); remove or downscale them"
    )


def _baseline_scores(baseline, labels: list, images: list):
    """(the baseline's probabilities in the candidate's class order, None) or (None, why it cannot be compared)."""
    if sorted(baseline.labels) != sorted(labels):
        return None, f"its classes {baseline.labels} are not the candidate's {labels}"
    try:
        scores = _scored(baseline, images)
    except DataError as e:
        return None, str(e)
    return scores[:, [baseline.labels.index(name) for name in labels]], None


def evaluate_model(config: EvaluateConfig, model, data: str, output_dir: str, baseline=None) -> EvaluateResult:
    """Score `model` on `data`, compute TFMA metrics into `output_dir` and apply the value thresholds;
    with a `baseline` (an opened model, e.g. the one in production), also the gate's change threshold:
    the paired test of the candidate against it on the same images."""
    config.validate()
    start = time.time()
    images, y = load_data(data, config.split, model.labels)
    predictions = {"candidate": _scored(model, images)}
    baseline_error = None
    if baseline is not None:
        predictions["baseline"], baseline_error = _baseline_scores(baseline, model.labels, images)
        if predictions["baseline"] is None:
            del predictions["baseline"]
    computed = tfma_metrics.compute(predictions, y, model.labels, config.top_k, os.path.join(output_dir, "tfma"))
    checks = gate.value_checks(config, predictions, y, model.labels)
    if "baseline" in predictions:
        checks.append(gate.baseline_check(config, predictions, y))
    elif baseline_error:
        checks.append(gate.unloadable_baseline_check(config, baseline_error))
    blessed = all(c.passed for c in checks)
    write_json(os.path.join(output_dir, ModelBlessing.METRICS), {**computed, "examples": len(y)})
    write_json(
        os.path.join(output_dir, "report.json"),
        {
            "model": model.path,
            "baseline": baseline.path if baseline is not None else None,
            "data": data,
            "passed": blessed,
            "examples": len(y),
            "checks": [c.as_dict() for c in checks],
            "failed": [c.reason for c in checks if not c.passed],
        },
    )
    return EvaluateResult(
        output_dir,
        blessed,
        checks,
        computed["metrics"],
        baseline.path if baseline is not None else None,
        round(time.time() - start, 2),
        f"{model.path} ({model.kind})",
    )
