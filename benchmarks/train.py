"""Benchmark: seconds per epoch of the frozen head stage, on cached backbone features vs on images.

Runs the same head-only stage twice through `components.train.run` (cache_features on, then off)
and times every epoch with a Keras callback (training plus validation, as a user waits for it).
The cached run computes the backbone features once before its first epoch; that time is
reported separately and added to its first epoch for the first-epoch ratio. Prints one JSON object; the target is a
>= 20x speedup for the epochs after the first (ratio of the medians of epochs 2..N).

    python -m benchmarks.train [--ingest-dir DIR] [--weights FILE] [--epochs 5]

Defaults: the sign-language folder in ../shared (ingested into a temporary directory) and the
pretrained MobileNetV2 in ../shared/weights, at 96 px.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import keras

from benchmarks.shared import PRETRAINED, SIGN_DIGITS
from components.train import StageConfig, TrainConfig, run

TARGET = 20.0


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds, self._start = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _ingest(tmp: str) -> str:
    from components.ingest import IngestConfig
    from components.ingest import run as ingest

    out = os.path.join(tmp, "ingest")
    ingest(IngestConfig(data_dir=SIGN_DIGITS), out)
    return out


def _timed_run(config: TrainConfig, ingest_dir: str, out: str) -> dict:
    timer = EpochTimer()
    started = time.perf_counter()
    result = run(config, ingest_dir, out, callbacks=[timer])
    stage = result.stages[0]
    return {
        "epoch_seconds": [round(s, 3) for s in timer.seconds],
        "stage_seconds": round(stage.seconds, 2),
        "feature_extraction_seconds": round(stage.feature_extraction_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "val_accuracy": round(result.best_val_accuracy, 4),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-dir", help="an ingest output directory (default: ingest ../shared sign-language)")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        ingest_dir = args.ingest_dir or _ingest(tmp)
        runs = {}
        for name, cache in (("uncached", False), ("cached", True)):
            config = TrainConfig(
                weights=args.weights,
                image_size=args.image_size,
                batch_size=args.batch_size,
                cache_features=cache,
                evaluate_test=False,
                stages=(StageConfig("head", epochs=args.epochs, learning_rate=3e-3, cosine_decay=False),),
            )
            runs[name] = _timed_run(config, ingest_dir, os.path.join(tmp, name))
    cached, uncached = runs["cached"], runs["uncached"]
    # Medians: a neighbour's load spike in one epoch should not decide the ratio either way.
    after_first = statistics.median(uncached["epoch_seconds"][1:]) / statistics.median(cached["epoch_seconds"][1:])
    report = {
        "benchmark": "train_head_stage_cached_features",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "uncached": uncached,
        "cached": cached,
        "speedup_per_epoch_after_first": round(after_first, 1),
        "speedup_first_epoch_including_extraction": round(
            uncached["epoch_seconds"][0] / (cached["epoch_seconds"][0] + cached["feature_extraction_seconds"]), 2
        ),
        "speedup_stage": round(uncached["stage_seconds"] / cached["stage_seconds"], 2),
        "target_speedup_after_first": TARGET,
        "target_met": after_first >= TARGET,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
