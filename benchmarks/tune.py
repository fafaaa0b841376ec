"""Benchmark: the tuned recipe against the default one, on test images the search never saw.

For each seed: the train config's recipe is searched on the folder's train and val splits
(`components.train.tune`, `--budget` seconds, `--max-trials`), then the default recipe and the
chosen one are each trained with that seed (`components.train.run`) and scored on the test split.
One ingest serves every run. The JSON row per seed gives both test accuracies, the validation
accuracies the search saw, the gain selection noise alone would give, the budget used and the trials.

    python -m benchmarks.tune --data-dir FOLDER [--weights FILE] [--image-size 96] [--budget 600]
                              [--max-trials 20] [--seeds 0,1,2] [--output FILE]

Without --data-dir: the sign-language folder and the pretrained backbone in ../shared. With
--demo: the built-in demo folder (drawn shapes, generated into a temporary directory), a task
unlike the photos the defaults were chosen on.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

from benchmarks.shared import PRETRAINED, SIGN_DIGITS


def _rows(args, ingest_dir: str, work: str) -> list:
    import keras

    from components.train import TrainConfig
    from components.train import run as train
    from components.train.tune import recipe_config
    from components.train.tune import run as tune
    from components.train.tune_config import TuneConfig
    from schemas.artifacts import Hyperparameters

    rows = []
    for seed in args.seeds:
        base = TrainConfig(weights=args.weights, image_size=args.image_size, seed=seed)
        started = time.time()
        searched = tune(
            TuneConfig(enabled=True, budget_seconds=args.budget, max_trials=args.max_trials, seed=seed),
            base,
            ingest_dir,
            os.path.join(work, f"tune-{seed}"),
        )
        tune_seconds = time.time() - started
        recipe = Hyperparameters(searched.output_dir).recipe()
        row = {
            "seed": seed,
            "tune_seconds": round(tune_seconds, 1),
            "budget_seconds": args.budget,
            "trials": searched.trials,
            "completed": searched.completed,
            "chosen_trial": searched.best_trial,
            "chosen": searched.chosen,
            "val_default_in_search": searched.default_val_accuracy,
            "val_best_in_search": searched.best_val_accuracy,
            "expected_gain_from_noise": (recipe.get("selection_noise") or {}).get("expected_gain_from_noise"),
        }
        for name, config in (("default", base), ("tuned", recipe_config(base, recipe["train"]))):
            keras.backend.clear_session()
            result = train(config, ingest_dir, os.path.join(work, f"train-{name}-{seed}"))
            row[f"{name}_val"] = round(result.best_val_accuracy, 4)
            row[f"{name}_test"] = round(result.test_accuracy, 4)
            row[f"{name}_train_seconds"] = round(result.seconds, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="a class-per-folder dataset (default: the sign-language folder)")
    parser.add_argument("--demo", action="store_true", help="the built-in demo folder instead")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per search")
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)
    from components.ingest import IngestConfig
    from components.ingest import run as ingest
    from components.train.precision import cpu_model

    work = tempfile.mkdtemp(prefix="bench-tune-")
    if args.demo:
        from pipeline import demo

        data_dir = demo.ensure_dataset(work)
    else:
        data_dir = args.data_dir or SIGN_DIGITS
    ingest_dir = os.path.join(work, "ingest")
    ingest(IngestConfig(data_dir=data_dir), ingest_dir)
    rows = _rows(args, ingest_dir, work)
    gains = [r["tuned_test"] - r["default_test"] for r in rows]
    out = {
        "machine": f"{os.cpu_count()} x {cpu_model()}, {platform.machine()}",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.tune " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": data_dir,
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "rows": rows,
        "mean_test": {
            "default": round(statistics.mean(r["default_test"] for r in rows), 4),
            "tuned": round(statistics.mean(r["tuned_test"] for r in rows), 4),
            "gain": round(statistics.mean(gains), 4),
        },
    }
    print(json.dumps(out, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
