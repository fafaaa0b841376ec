"""Benchmark: knowledge distillation on the sign-language folder, teacher / student from labels /
distilled student side by side.

Teacher: the default recipe on the shared pretrained MobileNetV2 (alpha 0.35) at 96 px.
Student: the same pretrained backbone at `--student-size` px (48 by default: a quarter of the
teacher's multiply-adds, so about 4x faster on a device; the same parameters, so the same file
size: with only this one pretrained backbone offline, a narrower student would have to start
from random weights). Once trained from the labels alone, once with `train.distill` from the
teacher (`--temperature`, `--alpha`). Every model is trained with `components.train.run` on one
ingest, seed and precision, exported (TFLite float32 and int8), and scored on the whole test split
as served (the SavedModel's `serving_default`, encoded JPEG in); the distilled student is compared
with the student from labels by McNemar's exact test on the same images.

    python -m benchmarks.distill [--student-size 48] [--student-backbone B --student-weights none]
                                 [--temperature 4] [--alpha 0.5] [--seed 0] [--out FILE]

Prints one JSON object (and a Markdown table on stderr).
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import numpy as np

import components.export
from benchmarks.shared import PRETRAINED
from benchmarks.small_data import _ingest, _scored
from components.common.formats.saved_model import SavedModelRunner
from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from components.train import TrainConfig, run
from components.train.config import TrainDistill
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split


def _ms_per_image(path: str, pixels: np.ndarray) -> float:
    runner = TFLiteRunner(path, num_threads=1)
    runner.predict_pixels(pixels[:1], 1)
    start = time.perf_counter()
    for image in pixels:
        runner.predict_pixels(image[None], 1)
    return round((time.perf_counter() - start) * 1000 / len(pixels), 3)


def _train_export_score(name, config, ingest_dir, tmp, baseline_correct=None) -> tuple:
    started = time.perf_counter()
    trained = run(config, ingest_dir, os.path.join(tmp, f"train-{name}"))
    seconds = round(sum(s.seconds for s in trained.stages), 1)
    export = components.export.run(
        components.export.ExportConfig(formats=("tflite_float32", "tflite_int8")),
        trained.output_dir,
        ingest_dir,
        os.path.join(tmp, f"export-{name}"),
    )
    _, images, labels = read_split(Examples(ingest_dir), "test")
    correct = SavedModelRunner(ExportedModel(export.output_dir).saved_model_dir()).predict_encoded(images).argmax(
        1
    ) == np.asarray(labels)
    pixels = preprocess(images[:50], (config.image_size, config.image_size))
    record = {
        "image_size": config.image_size,
        "train_seconds": seconds,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "val_accuracy": round(trained.best_val_accuracy, 4),
        "tflite_bytes": export.sizes,
        "tflite_float32_ms_per_image_1_thread": _ms_per_image(export.files["tflite_float32"], pixels),
        "tflite_int8_ms_per_image_1_thread": _ms_per_image(export.files["tflite_int8"], pixels),
    }
    return _scored(record, correct, baseline_correct), correct, trained.output_dir


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-dir", help="an ingest output directory (default: ingest ../shared sign-language)")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--student-size", type=int, default=48)
    parser.add_argument("--student-backbone", default="mobilenet_v2")
    parser.add_argument("--student-weights", help="default: the teacher's (--weights); 'none' trains from scratch")
    parser.add_argument("--temperature", type=float, default=TrainDistill.temperature)
    parser.add_argument("--alpha", type=float, default=TrainDistill.alpha)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="float32", choices=["auto", "float32", "mixed_bfloat16"])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    base = TrainConfig(weights=args.weights, seed=args.seed, evaluate_test=False, precision=args.precision)
    student = dataclasses.replace(
        base, image_size=args.student_size, backbone=args.student_backbone, weights=args.student_weights or args.weights
    )
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        ingest_dir = args.ingest_dir or _ingest(tmp)
        rows["teacher"], _, teacher_dir = _train_export_score("teacher", base, ingest_dir, tmp)
        rows["student_from_labels"], from_labels, _ = _train_export_score("student", student, ingest_dir, tmp)
        distilled = dataclasses.replace(student, distill=TrainDistill(teacher_dir, args.temperature, args.alpha))
        rows["distilled_student"], _, _ = _train_export_score("distilled", distilled, ingest_dir, tmp, from_labels)
    report = {
        "benchmark": "distillation",
        "weights": os.path.basename(args.weights),
        "seed": args.seed,
        "student": {
            "backbone": student.backbone,
            "image_size": student.image_size,
            "weights": os.path.basename(student.weights),
        },
        "precision": args.precision,
        "temperature": args.temperature,
        "alpha": args.alpha,
        "results": rows,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(
        "| model | input | test accuracy [95% interval] | vs student from labels | TFLite int8 / float32 | "
        "int8 ms/image | train time |",
        file=sys.stderr,
    )
    print("| --- | --- | --- | --- | --- | --- | --- |", file=sys.stderr)
    for name, r in rows.items():
        delta = f"{r['delta_vs_baseline']:+.3f} (p_better {r['p_better']:.3f})" if "delta_vs_baseline" in r else ""
        print(
            f"| {name} | {r['image_size']} px | {r['test_accuracy']:.3f} [{r['interval_95'][0]:.2f}, "
            f"{r['interval_95'][1]:.2f}] | {delta} | {r['tflite_bytes']['int8'] / 1e6:.2f} / "
            f"{r['tflite_bytes']['float32'] / 1e6:.2f} MB | {r['tflite_int8_ms_per_image_1_thread']:.2f} | "
            f"{r['train_seconds']:.0f} s |",
            file=sys.stderr,
        )
    return report


if __name__ == "__main__":
    main()
