"""Benchmark: test accuracy and training time of each small-data lever, on the full folder and a fraction.

Each lever is one `TrainConfig` change from the baseline, the default recipe before issue 13
(`PREVIOUS`: MobileNetV2 fine-tuned from block_13, no batch-level augmentation), trained with
`components.train.run` on the same ingest, seed and backbone; each run is evaluated on the
whole test split by this script (the same decode the exported model serves), so that every
variant's per-image correctness can be compared with the baseline's on the same images:
McNemar's exact test (`components.evaluate.gate.paired_comparison`), since on ~200 test images one
image is half a point and most differences between levers are within noise.

Levers (issue 13): RandAugment, MixUp, CutMix (batch-level, `components/train/batch_augment.py`),
a longer or deeper fine-tune stage,
test-time augmentation by horizontal flip (`tta_flip`: the baseline's model, softmax averaged
over the image and its mirror; no training) and `default`: the recipe `TrainConfig()` ships now,
scored as served (with `export.tta`'s default).

    python -m benchmarks.small_data [--fractions 1.0 0.2] [--levers ...] [--out FILE]

Prints one JSON object (and a Markdown table on stderr). Time ratio: a lever's training-stage
seconds over the baseline's at the same fraction, measured in the same process one after another.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks.shared import PRETRAINED, SIGN_DIGITS
from components.evaluate.gate import paired_comparison, wilson
from components.export import tta
from components.train import TrainConfig, run
from components.train.config import TrainAugment, default_stages
from components.train.input import make_dataset

# The recipe before issue 13, pinned (the defaults have moved since): MobileNetV2's fine-tune from
# block_13, no batch-level augmentation; scored without test-time augmentation.
PREVIOUS = TrainAugment(randaugment_ops=0, mixup=0.0, cutmix=0.0)
PREVIOUS_STAGES = default_stages(pretrained=True, finetune_from="block_13")
# Each lever: changes to `augment` and to the default fine-tune stage (`finetune`).
LEVERS = {
    "randaugment": {"augment": {"randaugment_ops": 2, "randaugment_magnitude": 0.5}},
    "randaugment_mild": {"augment": {"randaugment_ops": 1, "randaugment_magnitude": 0.2}},
    "mixup": {"augment": {"mixup": 0.2}},
    "cutmix": {"augment": {"cutmix": 1.0}},
    "mixup_cutmix": {"augment": {"mixup": 0.2, "cutmix": 1.0}},
    "finetune_12_epochs": {"finetune": {"epochs": 12}},
    "mixup_12_epochs": {"augment": {"mixup": 0.2}, "finetune": {"epochs": 12}},
    "unfreeze_block_10": {"finetune": {"unfreeze": "block_10"}},
    "unfreeze_block_6": {"finetune": {"unfreeze": "block_6"}},
}


def _with_lever(config: TrainConfig, lever: dict) -> TrainConfig:
    stages = tuple(
        dataclasses.replace(s, **lever.get("finetune", {})) if s.name == "finetune" else s
        for s in config.effective_stages()
    )
    return dataclasses.replace(
        config, augment=dataclasses.replace(config.augment, **lever.get("augment", {})), stages=stages
    )


def _ingest(tmp: str) -> str:
    from components.ingest import IngestConfig
    from components.ingest import run as ingest

    out = os.path.join(tmp, "ingest")
    ingest(IngestConfig(data_dir=SIGN_DIGITS), out)
    return out


def _test_probabilities(model: keras.Model, ingest_dir: str, image_size: int, flip: bool):
    """(probabilities [N, K], labels [N]) on the test split; with `flip`, averaged with the mirror image's."""
    probabilities, labels = [], []
    for images, batch_labels in make_dataset(ingest_dir, "test", image_size, 64, training=False):
        p = model(images, training=False).numpy()
        if flip:
            p = (p + model(tf.image.flip_left_right(images), training=False).numpy()) / 2.0
        probabilities.append(p)
        labels.append(batch_labels.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)


def _train(config: TrainConfig, ingest_dir: str, out: str) -> dict:
    """Train; "seconds" is the stages' time (fitting, feature extraction, validation), not the
    once-per-process costs before them (the first run also pays `precision: auto`'s measurement,
    which would make every later lever look faster than the baseline)."""
    started = time.perf_counter()
    result = run(config, ingest_dir, out)
    return {
        "seconds": round(sum(s.seconds for s in result.stages), 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "val_accuracy": round(result.best_val_accuracy, 4),
        "kept_stage": result.kept_stage,
        "epochs": {s.name: s.epochs_run for s in result.stages},
    }


def _scored(record: dict, correct: np.ndarray, baseline_correct) -> dict:
    n, right = len(correct), int(correct.sum())
    record.update(test_accuracy=round(right / n, 4), test_images=n, interval_95=wilson(right, n, 0.95))
    if baseline_correct is not None:
        better = paired_comparison(baseline_correct, correct, 0.95)  # H1: the baseline is worse
        worse = paired_comparison(correct, baseline_correct, 0.95)  # H1: the lever is worse
        record.update(
            delta_vs_baseline=round((right - int(baseline_correct.sum())) / n, 4),
            p_better=better["statistic"]["p_value"],
            p_worse=worse["statistic"]["p_value"],
            images_gained=better["statistic"]["model_worse"],
            images_lost=worse["statistic"]["model_worse"],
        )
    return record


def _row(fraction, name, r) -> str:
    delta = (
        f"{r['delta_vs_baseline']:+.3f} (p_better {r['p_better']:.2f}, p_worse {r['p_worse']:.2f})"
        if "delta_vs_baseline" in r
        else "baseline"
    )
    return (
        f"| {fraction} | {name} | {r['test_accuracy']:.3f} [{r['interval_95'][0]:.2f}, {r['interval_95'][1]:.2f}] "
        f"| {delta} | {r.get('seconds', 0):.0f} s ({r.get('time_ratio', 1.0):.2f}x) |"
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-dir", help="an ingest output directory (default: ingest ../shared sign-language)")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.2])
    parser.add_argument(
        "--levers",
        nargs="+",
        default=["randaugment", "mixup", "cutmix", "tta_flip", "default"],
        choices=[*LEVERS, "tta_flip", "default"],
    )
    parser.add_argument("--seed", type=int, default=0)
    # float32 by default: `auto` measures the CPU under whatever load the benchmark itself puts on it,
    # and a policy that flips between runs would move every accuracy by a few points.
    parser.add_argument("--precision", default="float32", choices=["auto", "float32", "mixed_bfloat16"])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-small-data-") as tmp:
        ingest_dir = args.ingest_dir or _ingest(tmp)
        base = TrainConfig(weights=args.weights, seed=args.seed, evaluate_test=False, precision=args.precision)
        for fraction in args.fractions:
            rows = results[str(fraction)] = {}
            configs = {
                "baseline": dataclasses.replace(base, augment=PREVIOUS, stages=PREVIOUS_STAGES, train_fraction=fraction)
            }
            configs.update(
                {name: _with_lever(configs["baseline"], LEVERS[name]) for name in args.levers if name in LEVERS}
            )
            if "default" in args.levers:
                configs["default"] = dataclasses.replace(base, train_fraction=fraction)
            baseline_correct = None
            for name, config in configs.items():
                out = os.path.join(tmp, f"train-{fraction}-{name}")
                record = _train(config, ingest_dir, out)
                model = keras.saving.load_model(os.path.join(out, "model.keras"))
                # The default recipe is scored as it is served: export.tta=auto flips (components/export/tta.py).
                served_flip = (
                    name == "default"
                    and tta.resolve("auto", {"config": json.loads(json.dumps(dataclasses.asdict(config), default=str))})
                    == "flip"
                )
                probabilities, labels = _test_probabilities(model, ingest_dir, config.image_size, flip=served_flip)
                record["tta"] = "flip" if served_flip else "none"
                correct = probabilities.argmax(axis=1) == labels
                rows[name] = _scored(record, correct, baseline_correct)
                if name == "baseline":
                    baseline_correct = correct
                    if "tta_flip" in args.levers:
                        flipped, _ = _test_probabilities(model, ingest_dir, config.image_size, flip=True)
                        rows["tta_flip"] = _scored(
                            {"seconds": record["seconds"]}, flipped.argmax(axis=1) == labels, baseline_correct
                        )
                rows[name]["time_ratio"] = round(record["seconds"] / rows["baseline"]["seconds"], 2)
                print(_row(fraction, name, rows[name]), file=sys.stderr, flush=True)
    report = {
        "benchmark": "small_data_levers",
        "weights": os.path.basename(args.weights),
        "seed": args.seed,
        "precision": args.precision,
        "levers": LEVERS,
        "results": results,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print("| train fraction | lever | test accuracy [95% interval] | vs baseline | training time |", file=sys.stderr)
    print("| --- | --- | --- | --- | --- |", file=sys.stderr)
    for fraction, rows in results.items():
        for name, r in rows.items():
            print(_row(fraction, name, r), file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
