"""Nightly retraining: what a rerun costs when the folder grew by a little, night after night.

    python -m benchmarks.nightly [--images 20000] [--nights 6] [--image-px 48] [--seeds 3]
                                 [--work DIR] [--weights FILE] [--out benchmarks/nightly_results.json]
                                 [-- extra pipeline.run flags, e.g. --set train.stages=[...]]

A folder of N photo-like JPEGs (benchmarks/photos.py, 10 classes) gets a first `pipeline.run` with
the default recipe (the shared pretrained backbone, `--image-size` as given). Then, each night,
1% new photos arrive (new images of every class), 0.5% of the files are removed and 0.5% are moved
to another class folder (relabelled), and the same command runs again: incremental ingest, warm
start from the model in production (or a full retrain when the rules say so), the audit, export,
gate and push. Per night: each step's seconds, the run's seconds as a fraction of the first, peak
RSS of the process tree (scale.run_pipeline), the gate's test accuracy, pushed or not, and whether
the trainer warm-started (and why not). After the last night, the same ingest is trained from the
backbone with the full recipe (`train.warm_start: none`) with `--seeds` seeds, and their test
accuracies (the trainer's Keras model, one plain pass, on the same test split) are set beside the
warm-started model's `keras_test_accuracy` (not beside `test_accuracy`, the gate's figure for the
exported model with test-time flip).
"""

import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

from benchmarks.photos import generate_photos, photo
from benchmarks.scale import run_pipeline
from benchmarks.shared import PRETRAINED, stamp


def _newest(root: str, component: str) -> str:
    base = os.path.join(root, component)
    return os.path.join(base, sorted(d for d in os.listdir(base) if d[0].isdigit())[-1])


def _change_folder(folder: str, night: int, next_index: int, rng: random.Random) -> dict:
    """Add 1% new photos, remove 0.5% and relabel 0.5% (moved to another class folder)."""
    files = sorted(glob.glob(os.path.join(folder, "class_*", "*.jpg")))
    classes = sorted(os.listdir(folder))
    n = len(files)
    add, remove, relabel = max(1, n // 100), max(1, n // 200), max(1, n // 200)
    picked = rng.sample(files, remove + relabel)
    for path in picked[:remove]:
        os.remove(path)
    for path in picked[remove:]:
        here = os.path.basename(os.path.dirname(path))
        there = rng.choice([c for c in classes if c != here])
        shutil.move(path, os.path.join(folder, there, f"moved_{night}_{os.path.basename(path)}"))
    size = _image_size(files[0])
    for index in range(next_index, next_index + add):
        label = index % len(classes)
        photo(index, size, 0, label).save(
            os.path.join(folder, f"class_{label:02d}", f"photo_{index:06d}.jpg"), quality=90
        )
    return {"added": add, "removed": remove, "relabelled": relabel, "next_index": next_index + add}


def _image_size(path: str) -> tuple:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def _night(root: str, run: dict, first_s: float) -> dict:
    run_id = re.search(r"\[pipeline\] run (\S+)", run["output_tail"])
    evaluate = _newest(root, "evaluate")
    metrics = json.load(open(os.path.join(evaluate, "metrics.json")))
    blessing = json.load(open(os.path.join(evaluate, "blessing.json")))
    info = json.load(open(os.path.join(_newest(root, "train"), "model_info.json")))
    ingest = json.load(open(os.path.join(_newest(root, "ingest"), "stats.json")))
    return {
        "run": run_id and run_id.group(1),
        "exit_code": run["exit_code"],
        "wall_s": run["wall_s"],
        "share_of_first": round(run["wall_s"] / first_s, 3),
        "steps_s": {step: v["s"] for step, v in run["steps"].items()},
        "peak_rss_mb": run["peak_rss_mb"],
        "test_accuracy": metrics["metrics"]["candidate"]["overall"].get("accuracy"),  # the gate's: exported, flip
        "keras_test_accuracy": info["test_accuracy"],  # the trainer's, as the full retrains below report it
        "blessed": blessing.get("blessed"),
        "pushed": run["exit_code"] == 0,
        "warm_start": {k: info["warm_start"].get(k) for k in ("source", "reason", "generation", "changed_fraction")},
        "ingest_files_read": ingest["inspection_counts"].get("files_read"),
        "ingest_files_reused": ingest.get("reused", {}).get("files"),
    }


def _full_retrains(root: str, seeds: int) -> list:
    """Test accuracy of the full recipe from the backbone on the last night's ingest, per seed: the first
    night's train config (its history.json: the full recipe) with `warm_start: none` and another seed."""
    accuracies = []
    ingest = _newest(root, "ingest")
    trains = os.path.join(root, "train")
    history = os.path.join(trains, sorted(d for d in os.listdir(trains) if d[0].isdigit())[0], "history.json")
    for seed in range(seeds):
        out = os.path.join(root, f"full_retrain_seed{seed}")
        shutil.rmtree(out, ignore_errors=True)
        code = (
            "import json; from components.train import run, TrainConfig; from pipeline.config import build_dataclass;"
            f"config = json.load(open({history!r}))['config'];"
            "config.update(warm_start='none', seed=" + str(seed) + ");"
            "train = build_dataclass(TrainConfig, config, 'train');"
            f"r = run(train, {ingest!r}, {out!r}); print(json.dumps(r.test_accuracy))"
        )
        started = time.time()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"full retrain seed {seed} failed:\n{done.stderr[-3000:]}")
        accuracies.append(
            {
                "seed": seed,
                "test_accuracy": json.loads(done.stdout.strip().splitlines()[-1]),
                "train_s": round(time.time() - started, 1),
            }
        )
    return accuracies


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nightly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--nights", type=int, default=6)
    parser.add_argument("--image-px", type=int, default=48, help="side of the photos and the model's input")
    parser.add_argument("--seeds", type=int, default=3, help="full retrains beside the last warm-started model")
    parser.add_argument("--work", default="/tmp/transferline-nightly")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "nightly_results.json"))
    parser.add_argument(
        "extra",
        nargs="*",
        help="flags for every pipeline.run (after --); also given to the full retrains' train config via --set train.*",
    )
    args = parser.parse_args(argv)
    source = os.path.join(args.work, f"photos_{args.images}_{args.image_px}px")
    if not os.path.exists(os.path.join(source, ".complete")):
        generate_photos(source, args.images, size=(args.image_px, args.image_px))
        open(os.path.join(source, ".complete"), "w").close()
    folder, root = os.path.join(args.work, "folder"), os.path.join(args.work, "root")
    for path in (folder, root):
        shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".complete"))
    flags = [
        "--runner=DirectRunner",
        *("--data-dir", folder, "--pipeline-root", root, "--serving-dir", os.path.join(root, "serving")),
        *("--weights", args.weights, "--image-size", str(args.image_px)),
        *args.extra,
    ]
    first = run_pipeline(flags)
    nights = [_night(root, first, first["wall_s"])]
    _write(args, argv, nights, None)
    rng, next_index = random.Random(0), args.images
    for night in range(1, args.nights + 1):
        change = _change_folder(folder, night, next_index, rng)
        next_index = change.pop("next_index")
        nights.append({"change": change, **_night(root, run_pipeline(flags), first["wall_s"])})
        print(json.dumps(nights[-1]), file=sys.stderr, flush=True)
        _write(args, argv, nights, None)
    result = _write(args, argv, nights, _full_retrains(root, args.seeds) if args.seeds else [])
    print(json.dumps({k: result[k] for k in ("later_nights_share_of_first", "ingest_share_of_first")}))
    return 0


def _write(args, argv, nights: list, full) -> dict:
    """Write the results so far after every night (`complete: false` until the full retrains are in), so a
    run that is stopped still leaves what it measured."""
    result = {
        **stamp(__doc__, "nightly", argv),
        "complete": full is not None,
        "images": args.images,
        "image_px": args.image_px,
        "nights": nights,
        "later_nights_share_of_first": [n["share_of_first"] for n in nights[1:]],
        "ingest_share_of_first": [
            round(n["steps_s"].get("ingest", 0) / nights[0]["steps_s"]["ingest"], 3) for n in nights[1:]
        ],
        "full_retrain_on_last_night": full or [],
    }
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
