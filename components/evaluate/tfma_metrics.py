"""Metrics of several models on one split, computed side by side by TensorFlow Model Analysis.

Why predictions are computed outside TFMA: TFMA 0.52 loads models through its TF2/Keras model
loaders, which predate Keras 3 and our signature layout, and it has no TFLite
path for a uint8-quantized classifier with our preprocessing. TFMA's supported alternative for
models it cannot run is used instead: every model's probabilities are stored in the examples
under a prediction key (`predictions/<model>`), and one TFMA run evaluates all model specs
(candidate, baseline, each TFLite variant) over exactly the same examples, with the same
metrics and slices (overall, and per true class).

Per-class precision, recall and F1 are one-vs-rest on the top-1 class, read off the confusion
matrix TFMA computes for each slice (`MultiClassConfusionMatrixPlot`, threshold 0 = argmax), not
from a second, binarized metrics spec: that spec (10 classes x 3 metrics per model) made TFMA
about 5x slower (43 s against 9 s for 5 models on 5,000 images) for the same numbers.
"""

import math
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from tensorflow_model_analysis.proto import config_pb2

from components.common import fileio

LABEL_KEY = "label"
OVERALL = "overall"


def _example(label: int, predictions: dict) -> bytes:
    feature = {LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))}
    for name, probabilities in predictions.items():
        feature[f"predictions/{name}"] = tf.train.Feature(float_list=tf.train.FloatList(value=probabilities))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def eval_config(model_names: list, num_classes: int, top_k: int) -> config_pb2.EvalConfig:
    """The TFMA config: one model spec per prediction key; the metrics and slices of the gate."""
    config = config_pb2.EvalConfig()
    for name in model_names:
        config.model_specs.add(name=name, label_key=LABEL_KEY, prediction_key=f"predictions/{name}")
    text_format.Parse(
        f"""
      metrics {{ class_name: "ExampleCount" }}
      metrics {{ class_name: "SparseCategoricalAccuracy" }}
      metrics {{ class_name: "SparseTopKCategoricalAccuracy" config: '"k": {min(top_k, num_classes)}' }}
      metrics {{ class_name: "MultiClassConfusionMatrixPlot" }}
    """,
        config.metrics_specs.add(model_names=model_names),
    )
    config.slicing_specs.add()
    config.slicing_specs.add(feature_keys=[LABEL_KEY])
    return config


def _run_tfma(config: config_pb2.EvalConfig, records: list, data: str, output_dir: str, beam_options=None) -> None:
    """`tfma.run_model_analysis` for precomputed predictions, on the pipeline's Beam runner
    (`beam_options`, as the ingest's: the local FnApiRunner by default, or a distributed one).

    The same decoding and the same `ExtractEvaluateAndWriteResults` as `run_model_analysis`, whose
    own `beam.Pipeline` takes the DirectRunner route: Beam >= 2.68 first tries to download the Prism
    runner there, which offline costs seconds of every evaluation before it falls back to this
    runner (components/common/beam_runner.py). The serialized `records` (labels and probabilities,
    no images: kilobytes) enter with `beam.Create` rather than a file source, because Beam's
    DaskRunner translates no source transform but Create (a file read becomes an empty input there).
    `data` is the same records' file, named in TFMA's output as where the data came from.
    """
    from tensorflow_model_analysis import constants
    from tensorflow_model_analysis.utils import config_util
    from tfx_bsl.public.tfxio import TFExampleRecord

    from components.common.beam_runner import make_pipeline, tfma_options

    config = config_util.update_eval_config_with_defaults(config, has_baseline=False, rubber_stamp=False)
    examples = TFExampleRecord(
        file_pattern=data, raw_record_column_name=constants.ARROW_INPUT_COLUMN, telemetry_descriptors=["transferline"]
    )
    with make_pipeline(tfma_options(beam_options)) as pipeline:
        _ = (
            pipeline
            | "Predictions" >> beam.Create(records, reshuffle=False)
            | "Decode" >> examples.RawRecordToRecordBatch()
            | "ExtractEvaluateAndWriteResults"
            >> tfma.ExtractEvaluateAndWriteResults(
                eval_config=config, output_path=output_dir, display_only_data_location=data
            )
        )


def _number(value: float):
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _slice_name(slice_key, labels: list) -> str:
    if not slice_key.single_slice_keys:
        return OVERALL
    return f"label={labels[slice_key.single_slice_keys[0].int64_value]}"


_NAMES = {
    "example_count": "example_count",
    "sparse_categorical_accuracy": "accuracy",
    "sparse_top_k_categorical_accuracy": "top_k_accuracy",
}


def per_class(matrix: np.ndarray, class_names: list) -> dict:
    """`precision/<class>`, `recall/<class>`, `f1/<class>` (None where undefined: a class never predicted, or
    absent) and their macro averages (an undefined value counting as 0) from a [true, predicted] count matrix."""
    values = {}
    for k, name in enumerate(class_names):
        predicted, actual = matrix[:, k].sum(), matrix[k].sum()
        precision = matrix[k, k] / predicted if predicted else None
        recall = matrix[k, k] / actual if actual else None
        f1 = (
            None
            if precision is None or recall is None
            else (0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
        )
        values.update(
            {f"precision/{name}": _number(precision), f"recall/{name}": _number(recall), f"f1/{name}": _number(f1)}
        )
    for metric in ("precision", "recall", "f1"):
        values[f"macro_{metric}"] = _number(float(np.mean([values[f"{metric}/{c}"] or 0.0 for c in class_names])))
    return values


def compute(
    predictions: dict, labels: np.ndarray, class_names: list, top_k: int, output_dir: str, beam_options=None
) -> dict:
    """Evaluate every model's `predictions` ([n, classes] arrays) against `labels` with TFMA.

    Writes the TFMA outputs (and the examples it read) to `output_dir`; returns
    {"metrics": {model: {slice: {metric: value}}}, "confusion_matrix": {model: [[count]]}} where
    metrics are accuracy, top_k_accuracy, example_count, precision/recall/f1 per class
    (`recall/<class>`) and macro_precision/macro_recall/macro_f1.
    """
    tf.io.gfile.makedirs(output_dir)
    output_dir = fileio.glob_safe(output_dir)  # Beam's file sinks and TFMA's readers glob their paths
    data = os.path.join(output_dir, "predictions.tfrecord")
    records = [_example(label, {name: p[i] for name, p in predictions.items()}) for i, label in enumerate(labels)]
    with tf.io.TFRecordWriter(data) as writer:
        for record in records:
            writer.write(record)
    names = list(predictions)  # with a single model TFMA reports it under the name ""
    _run_tfma(eval_config(names, len(class_names), top_k), records, data, output_dir, beam_options)

    metrics = {name: {} for name in names}
    for record in tfma.load_metrics(output_dir):
        slice_name = _slice_name(record.slice_key, class_names)
        for kv in record.metric_keys_and_values:
            key = kv.key
            name = _NAMES.get(key.name)
            if name is None or key.is_diff:
                continue
            metrics[key.model_name or names[0]].setdefault(slice_name, {})[name] = _number(kv.value.double_value.value)

    confusion = {}
    for record in tfma.load_plots(output_dir):
        slice_name = _slice_name(record.slice_key, class_names)
        for kv in record.plot_keys_and_values:
            matrix = np.zeros((len(class_names), len(class_names)), np.int64)
            argmax = kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0]  # threshold 0: top-1
            for entry in argmax.entries:
                if entry.predicted_class_id >= 0:
                    matrix[entry.actual_class_id, entry.predicted_class_id] = int(entry.num_weighted_examples)
            model = kv.key.model_name or names[0]
            metrics[model].setdefault(slice_name, {}).update(per_class(matrix, class_names))
            if slice_name == OVERALL:
                confusion[model] = matrix.tolist()
    return {"metrics": metrics, "confusion_matrix": confusion}
