"""Export benchmark: every pixels-in export format beside the float SavedModel, and TFMA evaluation throughput.

1. Per format of the registry (components/common/formats/: the TFLite variants run by LiteRT,
   ONNX by ONNX Runtime): file size and its ratio to TFLite float32, ms per image with 1 and 2
   threads (batch 1, preprocessed pixels, median of the per-image times), top-1 accuracy on the
   test split and the export's parity max |diff| against Keras; beside them the float SavedModel
   (`serving_default`, batch 1, encoded JPEG bytes in: decoding included, as served), and its
   `serve_images` signature on the same preprocessed pixels (no decoding: the like-for-like row).
   Target: int8 <= 0.3x the float32 size with <= 1 point accuracy drop.
2. Evaluation throughput (images/s) over the same test TFRecords: our evaluation path
   (`serve_tf_examples` predictions + the TFMA run with every gate metric and slice) versus a
   plain loop (tf.data read, parse, `decode_and_resize`, `model.predict`, numpy accuracy).

The model is the shared pretrained MobileNetV2 (alpha 0.35, 96 px, frozen) with a dense head
fitted on the sign-language photos (tests/export_models.py builds it), unless --train-dir and
--ingest-dir name a trained model and its ingest. Needs ../shared. Wall times on a shared
machine vary; CPU seconds of the process are reported beside them.

    python -m benchmarks.export [--train-per-class 40] [--test-per-class 30] [--timed 50] [--output FILE]
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import components.export
from benchmarks.shared import SHARED, SIGN_DIGITS
from components.common import formats
from components.common.formats.saved_model import SavedModelRunner
from components.common.image_ops import decode_and_resize, preprocess
from components.evaluate import tfma_metrics
from schemas.artifacts import Examples, ExportedModel, Model
from schemas.split_reader import read_split


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _d, files in os.walk(path) for f in files)


def _machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    return f"{os.cpu_count()} x {model}"


def _median_ms(fn, items) -> float:
    fn(items[0])  # warm-up
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def _format_row(fmt, path, pixels, labels, timed) -> dict:
    row = {"title": fmt.title, "bytes": os.path.getsize(path)}
    for threads in (1, 2):
        runner = fmt.open(path, threads)
        row[f"ms_per_image_{threads}_thread"] = _median_ms(lambda p: runner.predict_pixels(p[None], 1), pixels[:timed])
    row["accuracy"] = round(float(np.mean(runner.predict_pixels(pixels).argmax(1) == labels)), 4)
    return row


def _plain_loop(train_dir, ingest_dir, image_size) -> tuple:
    """(images/s, accuracy) of tf.data -> decode_and_resize -> model.predict over the test shards."""
    model = keras.models.load_model(Model(train_dir).model_path(), compile=False)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    start = time.perf_counter()
    dataset = (
        tf.data.TFRecordDataset(Examples(ingest_dir).shards("test"))
        .map(lambda r: tf.io.parse_single_example(r, spec))
        .map(lambda e: (decode_and_resize(e["image"], image_size), e["label"]))
        .batch(32)
    )
    correct = count = 0
    for pixels, y in dataset:
        predicted = model.predict_on_batch(pixels).argmax(1)
        correct += int(np.sum(predicted == y.numpy()))
        count += len(y)
    return count / (time.perf_counter() - start), correct / count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-dir")
    parser.add_argument("--ingest-dir")
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--test-per-class", type=int, default=30)
    parser.add_argument("--timed", type=int, default=50, help="images timed per latency measurement")
    parser.add_argument("--output", help="also write the JSON here (e.g. benchmarks/export_results.json)")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-export-")
    cpu0 = time.process_time()
    if args.train_dir:
        train_dir, ingest_dir = args.train_dir, args.ingest_dir
    else:
        from tests import export_models

        ingest_dir = export_models.sign_digits_ingest_dir(
            pathlib.Path(work) / "ingest",
            pathlib.Path(SIGN_DIGITS),
            args.train_per_class,
            args.test_per_class,
        )
        train_dir = export_models.train_sign_digits(
            pathlib.Path(work) / "train", ingest_dir, pathlib.Path(SHARED, "weights")
        )

    start = time.perf_counter()
    export = components.export.run(
        components.export.ExportConfig(), train_dir, ingest_dir, os.path.join(work, "export")
    )
    export_seconds = time.perf_counter() - start
    info = ExportedModel(export.output_dir).info()
    image_size = tuple(info["image_size"])
    serialized, images, labels = read_split(Examples(ingest_dir), "test")
    pixels = preprocess(images, image_size)

    saved = SavedModelRunner(ExportedModel(export.output_dir).saved_model_dir())
    float_probs = saved.predict_encoded(images)
    float_accuracy = float(np.mean(float_probs.argmax(1) == labels))
    serve_images = saved.model.signatures["serve_images"]
    uint8 = np.round(pixels).astype(np.uint8)
    parity = ExportedModel(export.output_dir).parity()["max_abs_diff"]
    result = {
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.export " + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "model": info.get("backbone"),
        "image_size": list(image_size),
        "test_images": len(labels),
        "export_seconds": round(export_seconds, 1),
        "saved_model": {
            "bytes": _dir_bytes(export.saved_model_dir),
            "accuracy": round(float_accuracy, 4),
            "parity_max_abs_diff": parity["saved_model"],
            "ms_per_image_serving_default": _median_ms(lambda b: saved.predict_encoded([b]), images[: args.timed]),
            "ms_per_image_serve_images_pixels": _median_ms(
                lambda p: serve_images(images=tf.constant(p[None])), uint8[: args.timed]
            ),
        },
        "formats": {},
    }
    for name, path in export.files.items():
        fmt = formats.get(name)
        if fmt.reference:
            continue
        row = _format_row(fmt, path, pixels, labels, args.timed)
        row["size_vs_tflite_float32"] = round(row["bytes"] / os.path.getsize(export.files["tflite_float32"]), 3)
        row["accuracy_drop_vs_saved_model"] = round(float_accuracy - row["accuracy"], 4)
        row["parity_max_abs_diff"] = parity.get(name)
        result["formats"][name] = row
    int8 = result["formats"]["tflite_int8"]
    result["targets"] = {
        "int8_size_vs_float32_max": 0.3,
        "int8_accuracy_drop_max": 0.01,
        "int8_size_met": int8["size_vs_tflite_float32"] <= 0.3,
        "int8_accuracy_met": int8["accuracy_drop_vs_saved_model"] <= 0.01,
    }

    start = time.perf_counter()
    predictions = {
        "candidate": SavedModelRunner(ExportedModel(export.output_dir).saved_model_dir()).predict_examples(serialized)
    }
    predicted = time.perf_counter()
    tfma_metrics.compute(predictions, labels, info["labels"], 3, os.path.join(work, "tfma"))
    done = time.perf_counter()
    plain_rate, plain_accuracy = _plain_loop(train_dir, ingest_dir, image_size)
    ours_rate = len(labels) / (done - start)
    result["evaluation"] = {
        "ours_images_per_s": round(ours_rate, 1),
        "ours_predict_seconds": round(predicted - start, 2),
        "ours_tfma_seconds": round(done - predicted, 2),
        "plain_predict_loop_images_per_s": round(plain_rate, 1),
        "plain_loop_accuracy": round(plain_accuracy, 4),
        "ratio_ours_vs_plain": round(ours_rate / plain_rate, 3),
    }
    result["process_cpu_seconds"] = round(time.process_time() - cpu0, 1)
    print(json.dumps(result, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
