"""Training input throughput, and how long the trainer waits on it; prints one JSON object.

1. Augmented 224 px batches per second from the ingest's TFRecords
   (`components.train.input.make_dataset`, default `AugmentConfig`: random-resized-crop, flip,
   rotation, zoom, contrast, brightness) versus the tutorial pipeline on the same JPEG files:
   `keras.utils.image_dataset_from_directory` followed by the Keras layers with the same ranges
   (`RandomFlip`, `RandomRotation`, `RandomZoom`, `RandomContrast`, `RandomBrightness`) mapped over
   its batches. The baseline does no random-resized-crop, so it does strictly less work. Both are
   warmed up for one epoch first, then timed over the same number of batches, alternating
   ours/baseline for `--rounds` short rounds so that a change in machine load hits both; the
   ratio is taken per round and the median reported.
2. The fraction of step time a training loop spends waiting in `next(iterator)` for MobileNetV2
   (alpha 1.0, random weights) at 224 px, fed by `make_dataset`: fine-tuning (all layers train)
   and head-only (backbone frozen and called with training=False, as in the trainer's first
   stage, whose steps are shortest so the input matters most).

The photos are `benchmarks.photos` (photo-like 500x375 JPEGs, ~40 KB, like web photo datasets)
ingested with `components.ingest.run`, so the TFRecords are what a user's run would train on.

The machine is shared, so both are also reported as CPU milliseconds per image (all threads of the
process), which another process's load disturbs far less than wall time.

    python -m benchmarks.train_input [--images 800] [--batches 15] [--rounds 7] [--steps 8]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time

import keras
import tensorflow as tf

from benchmarks.photos import generate_photos
from components.ingest import IngestConfig
from components.ingest import run as ingest
from components.train.backbones import build_backbone
from components.train.config import AugmentConfig
from components.train.input import make_dataset
from schemas.artifacts import Examples


def keras_augmentation_layers(augment: AugmentConfig) -> list:
    """The Keras layers with the same ranges as `augment` (what the tutorials map over batches)."""
    return [
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(augment.rotation, fill_mode="reflect"),
        keras.layers.RandomZoom(augment.zoom, fill_mode="reflect"),
        keras.layers.RandomContrast(augment.contrast, value_range=(0, 255)),
        keras.layers.RandomBrightness(augment.brightness, value_range=(0, 255)),
    ]


def baseline_dataset(photo_dir: str, image_size, batch_size: int, augment: AugmentConfig) -> tf.data.Dataset:
    layers = keras_augmentation_layers(augment)

    def apply(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        return images, labels

    ds = keras.utils.image_dataset_from_directory(
        photo_dir, image_size=image_size, batch_size=batch_size, shuffle=True, seed=0, verbose=False
    )
    return ds.repeat().map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def throughput(dataset: tf.data.Dataset, batches: int, warmup: int = 2) -> dict:
    """Images per second of wall time, and CPU milliseconds per image (steadier on a shared machine).

    A fresh iterator per call, deleted at the end: an idle iterator keeps filling its prefetch
    buffers in the background, which would both steal CPU from the other pipeline's round and
    hand its own next round batches made outside the timed window.
    """
    iterator = iter(dataset)
    for _ in range(warmup):  # start the threads; the consumer then keeps the buffers drained
        next(iterator)
    start, cpu = time.perf_counter(), _cpu_seconds()
    images = sum(int(tf.shape(next(iterator)[0])[0]) for _ in range(batches))
    result = {
        "images_per_s": images / (time.perf_counter() - start),
        "cpu_ms_per_image": 1000 * (_cpu_seconds() - cpu) / images,
    }
    del iterator
    return result


def input_wait_fraction(ingest_dir: str, image_size, batch_size: int, steps: int, head_only: bool) -> dict:
    """Time in next(iterator) over total step time, for a MobileNetV2 classifier trained on `make_dataset`."""
    keras.backend.clear_session()
    preprocessing, backbone = build_backbone("MobileNetV2", image_size, weights="none")
    backbone.trainable = not head_only
    inputs = keras.Input((*image_size, 3))
    features = backbone(preprocessing(inputs), training=False if head_only else None)
    pooled = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(features))
    num_classes = 10
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(pooled))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    iterator = iter(make_dataset(ingest_dir, "train", image_size, batch_size, training=True, repeat=True))
    for _ in range(2):  # compile the step, fill the cache and the prefetch buffer
        model.train_on_batch(*next(iterator))
    waited = total = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        images, labels = next(iterator)
        fetched = time.perf_counter()
        model.train_on_batch(images, labels)  # returns numpy losses: the step has finished
        end = time.perf_counter()
        waited += fetched - start
        total += end - start
    return {
        "wait_fraction": round(waited / total, 4),
        "step_seconds": round(total / steps, 3),
        "waited_seconds": round(waited, 3),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=800, help="photos to generate (10 classes)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=15, help="timed batches per pipeline per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per mode (0: skip)")
    parser.add_argument("--workdir", help="keep photos and TFRecords here (default: a temporary folder, removed)")
    args = parser.parse_args()
    size = (args.image_size, args.image_size)
    workdir = args.workdir or tempfile.mkdtemp(prefix="transferline-bench-")
    load_before = os.getloadavg()
    try:
        photo_dir = os.path.join(workdir, "photos")
        if not os.path.isdir(photo_dir):
            generate_photos(photo_dir, args.images, classes=10)
        ingest_dir = os.path.join(workdir, "ingest")
        if not os.path.isdir(ingest_dir):
            ingest(IngestConfig(data_dir=photo_dir), ingest_dir)
        augment = AugmentConfig()
        ours = make_dataset(ingest_dir, "train", size, args.batch_size, training=True, augment=augment, repeat=True)
        baseline = baseline_dataset(photo_dir, size, args.batch_size, augment)
        epoch = -(-sum(Examples(ingest_dir).class_counts("train")) // args.batch_size) + 1
        throughput(ours, epoch)  # a whole epoch: fills our in-memory cache of encoded bytes
        throughput(baseline, epoch)  # and the OS page cache with the baseline's files
        rounds = [
            {"ours": throughput(ours, args.batches), "baseline": throughput(baseline, args.batches)}
            for _ in range(args.rounds)
        ]

        def median(pipeline, key):
            return round(statistics.median(r[pipeline][key] for r in rounds), 2)

        def median_ratio(key, invert=False):
            ratios = [
                (r["baseline"][key] / r["ours"][key]) if invert else (r["ours"][key] / r["baseline"][key])
                for r in rounds
            ]
            return round(statistics.median(ratios), 2)

        result = {
            "benchmark": "train_input",
            "photos": args.images,
            "photo_size": [500, 375],
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "timed_batches_per_round": args.batches,
            "ours_images_per_s": median("ours", "images_per_s"),
            "baseline_images_per_s": median("baseline", "images_per_s"),
            "speedup_vs_image_dataset_from_directory": median_ratio("images_per_s"),
            "target_speedup": 1.5,
            "ours_cpu_ms_per_image": median("ours", "cpu_ms_per_image"),
            "baseline_cpu_ms_per_image": median("baseline", "cpu_ms_per_image"),
            "cpu_speedup": median_ratio("cpu_ms_per_image", invert=True),
            "rounds_speedup": [round(r["ours"]["images_per_s"] / r["baseline"]["images_per_s"], 2) for r in rounds],
            "augment": {
                "ours": "random-resized-crop + flip/rotation/zoom/contrast/brightness (AugmentConfig())",
                "baseline": "flip/rotation/zoom/contrast/brightness Keras layers, same ranges, no crop",
            },
        }
        if args.steps:
            result["input_wait_mobilenet_v2"] = {
                mode: input_wait_fraction(
                    ingest_dir, size, args.batch_size, args.steps, head_only=(mode == "head_only")
                )
                for mode in ("finetune", "head_only")
            }
            result["target_wait_fraction"] = 0.05
        result["cpu_count"] = os.cpu_count()
        result["load_average_1min"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
        print(json.dumps(result, indent=1))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
