"""A folder of camera-size photos, end to end: the default run against the same photos pre-shrunk.

    python -m benchmarks.camera_folder [--photos 6000] [--side 3000] [--work DIR] [--weights FILE]

Makes, once, three folders of the same N photos from the real sign-language photos (10 classes;
each source photo used for several variants: its own crop, mirror and exposure, then upscaled to
3000 x 2000 with sensor-like noise, JPEG quality 92, about 1.5 MB each, several GB in all):
  camera/    as a phone writes them: a quarter stored rotated (EXIF orientations 6, 8 and 3 in
             turn) with the tag that makes them upright, the rest as they are;
  upright/   every photo stored upright (the rotated ones' upright copies);
  shrunk512/ every photo upright at 512 px on the longer side (the pre-shrunk baseline).
Then runs `python -m pipeline.run` with the default config and the shared pretrained backbone on
camera/ and on shrunk512/, each from a fresh pipeline root, sampling the process tree's RSS
(benchmarks/scale.py's `run_pipeline`), and reports for each: wall time, each step's seconds,
peak RSS, the records' bytes, the gate's test accuracy. On the camera run it also checks what users
get:
  validate: `python -m pipeline.validate` of the pushed model on a raw folder of the test split's
    original files (as the camera wrote them) against the gate's accuracy on the same images;
  predict: `python -m pipeline.predict` on each rotated test photo and on its upright copy: how
    many answers agree; and the same with the previous decoder (`tf.io.decode_image`, which ignores
    EXIF orientation, fed to the same model's `serve_images`), for the before figure.
With --ingest-throughput, it also times the ingest step alone (components.ingest.run, in this process,
default threads) on camera/ with the DCT-scaled decode and without it (`decode._draft` switched off,
the full decode it replaced): photos/s before and after. The per-photo decode on one thread is
benchmarks/camera_photos.py.
"""

import argparse
import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from benchmarks.scale import run_pipeline
from benchmarks.shared import PRETRAINED, SIGN_DIGITS

_NOISE_TILE = 1024


def _sources() -> list:
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(SIGN_DIGITS) for f in fs if f.upper().endswith(".JPG"))


def _make(job) -> None:
    """Photo `index` in the three folders (its own random crop, mirror, exposure and noise)."""
    import io

    from PIL import Image

    from tests.camera_encodings import stored_rotated

    index, source, work, side = job
    rng = np.random.default_rng(index)
    label = os.path.basename(os.path.dirname(source))
    name = os.path.join(label, f"photo_{index:05d}.jpg")
    small = Image.open(source).convert("RGB")
    w, h = small.size
    crop_w = int(w * rng.uniform(0.85, 1.0))
    crop_h = crop_w * 2 // 3
    x, y = rng.integers(0, w - crop_w + 1), rng.integers(0, h - crop_h + 1)
    small = small.crop((x, y, x + crop_w, y + crop_h))
    if rng.random() < 0.5:
        small = small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    big = np.asarray(small.resize((side, side * 2 // 3), Image.Resampling.BICUBIC), np.int16)
    tile = np.random.default_rng(0).normal(0, 6, (_NOISE_TILE, _NOISE_TILE, 3)).astype(np.int16)
    oy, ox = rng.integers(0, _NOISE_TILE - 1, 2)
    noise = np.roll(np.roll(tile, -oy, 0), -ox, 1)
    reps = (-(-big.shape[0] // _NOISE_TILE), -(-big.shape[1] // _NOISE_TILE), 1)
    big = big * rng.uniform(0.9, 1.1) + np.tile(noise, reps)[: big.shape[0], : big.shape[1]]
    photo = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
    out = {}
    for folder in ("camera", "upright", "shrunk512"):
        os.makedirs(os.path.join(work, folder, label), exist_ok=True)
        out[folder] = os.path.join(work, folder, name)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    with open(out["upright"], "wb") as f:
        f.write(buffer.getvalue())
    if index % 4 == 0:
        with open(out["camera"], "wb") as f:
            f.write(stored_rotated(photo, (6, 8, 3)[index // 4 % 3], quality=92))
    elif not os.path.exists(out["camera"]):
        os.link(out["upright"], out["camera"])
    photo.thumbnail((512, 512), Image.Resampling.LANCZOS)
    photo.save(out["shrunk512"], format="JPEG", quality=92)


def make_folders(work: str, count: int, side: int) -> None:
    if os.path.exists(os.path.join(work, ".complete")):
        return
    sources = _sources()
    jobs = [(i, sources[i % len(sources)], work, side) for i in range(count)]
    with multiprocessing.Pool(os.cpu_count()) as pool:
        for done, _ in enumerate(pool.imap_unordered(_make, jobs, chunksize=16), 1):
            if done % 500 == 0:
                print(f"made {done} of {count} photos", file=sys.stderr, flush=True)
    open(os.path.join(work, ".complete"), "w").close()


def _du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def _newest(root: str, *parts) -> str:
    folder = os.path.join(root, *parts)
    return os.path.join(folder, sorted(d for d in os.listdir(folder) if not d.startswith("."))[-1])


def _gate_accuracy(root: str) -> float:
    evaluate = _newest(root, "evaluate")
    metrics = json.load(open(os.path.join(evaluate, "metrics.json")))
    return metrics["metrics"]["candidate"]["overall"]["accuracy"], metrics["examples"], metrics.get("serving_skew")


def _run(folder: str, root: str, weights: str) -> dict:
    result = run_pipeline(
        ["--runner=DirectRunner", "--data-dir", folder, "--pipeline-root", root, "--weights", weights]
    )
    accuracy, examples, skew = _gate_accuracy(root)
    ingest = _newest(root, "ingest")
    return {
        **{k: result[k] for k in ("exit_code", "wall_s", "peak_rss_mb", "steps")},
        "folder_bytes": _du(folder),
        "records_bytes": _du(os.path.join(ingest, "data")),
        "gate_test_accuracy": accuracy,
        "test_examples": examples,
        "serving_skew": {k: skew[k] for k in ("checked", "skipped")} | {"differing": len(skew["differing"])},
        "ingest_photos_per_s": round(
            sum(1 for _ in csv.DictReader(open(os.path.join(ingest, "manifest.csv")))) / result["steps"]["ingest"]["s"],
            1,
        ),
    }


def _users(work: str, root: str) -> dict:
    """validate on the raw test files, predict on rotated photos and their upright copies, before and now."""
    import tensorflow as tf

    ingest = _newest(root, "ingest")
    rows = [r for r in csv.DictReader(open(os.path.join(ingest, "manifest.csv"))) if r["split"] == "test"]
    raw = os.path.join(work, "test_as_written")
    for row in rows:
        dest = os.path.join(raw, row["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.exists(dest):
            os.link(os.path.join(work, "camera", row["path"]), dest)
    serving = os.path.join(root, "serving")
    validated = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.validate",
            "classifier",
            raw,
            "--serving-dir",
            serving,
            "--json",
            "--min-accuracy",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    validate_accuracy = json.loads(validated.stdout)["metrics"]["candidate"]["overall"]["accuracy"]
    rotated = [r["path"] for r in rows if int(r["path"][-9:-4]) % 4 == 0]

    def predicted(folder):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.predict",
                "classifier",
                "--serving-dir",
                serving,
                "--top-k",
                "1",
                *[os.path.join(work, folder, p) for p in rotated],
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [json.loads(line)["label"] for line in out.splitlines()]

    now = sum(a == b for a, b in zip(predicted("camera"), predicted("upright")))
    version = _newest(root, "serving", "classifier")
    served = tf.saved_model.load(version).signatures["serve_images"]

    def before(folder):  # the previous decoder: TensorFlow's, which ignores EXIF orientation
        labels = []
        for path in rotated:
            pixels = tf.io.decode_image(
                open(os.path.join(work, folder, path), "rb").read(), channels=3, expand_animations=False
            )
            labels.append(served(images=pixels[None])["label"].numpy()[0].decode())
        return labels

    before_agree = sum(a == b for a, b in zip(before("camera"), before("upright")))
    return {
        "test_files": len(rows),
        "validate_raw_folder_accuracy": validate_accuracy,
        "rotated_test_photos": len(rotated),
        "predict_rotated_same_as_upright_now": f"{now}/{len(rotated)}",
        "rotated_same_as_upright_before": f"{before_agree}/{len(rotated)}",
    }


def ingest_throughput(folder: str, work: str) -> dict:
    """Photos/s of the ingest step on `folder`, with libjpeg's DCT scaling and with the full decode."""
    import components.ingest
    from components.ingest import decode

    rates, original = {}, decode._draft
    for label, draft in (("full_decode", lambda image, fmt, max_side: None), ("dct_scaled", original)):
        decode._draft = draft
        out = os.path.join(work, f"ingest_{label}")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        result = components.ingest.run(components.ingest.IngestConfig(data_dir=folder), out)
        seconds = time.perf_counter() - start
        kept = sum(sum(per_split.values()) for per_split in result.counts.values())
        rates[f"{label}_photos_per_s"] = round(kept / seconds, 1)
        shutil.rmtree(out)
    decode._draft = original
    rates["speedup"] = round(rates["dct_scaled_photos_per_s"] / rates["full_decode_photos_per_s"], 2)
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.camera_folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=6000)
    parser.add_argument("--side", type=int, default=3000)
    parser.add_argument("--work", default="/tmp/camera_folder")
    parser.add_argument("--weights", default=PRETRAINED)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "camera_folder_results.json"))
    parser.add_argument(
        "--ingest-throughput", action="store_true", help="also time the ingest with and without DCT scaling"
    )
    args = parser.parse_args(argv)
    start = time.time()
    make_folders(args.work, args.photos, args.side)
    made = round(time.time() - start)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "command": f"python -m benchmarks.camera_folder --photos {args.photos} --side {args.side}",
        "folders_made_s": made,
    }
    for name in ("camera", "shrunk512"):
        root, saved = os.path.join(args.work, f"root_{name}"), os.path.join(args.work, f"result_{name}.json")
        if not os.path.exists(saved):  # each run's figures kept, so a rerun of the script redoes only what failed
            shutil.rmtree(root, ignore_errors=True)
            with open(saved, "w") as f:
                json.dump(_run(os.path.join(args.work, name), root, args.weights), f)
        results[name] = json.load(open(saved))
        print(json.dumps({name: results[name]}, indent=2), file=sys.stderr, flush=True)
    camera, shrunk = results["camera"], results["shrunk512"]
    results["ratios"] = {
        "wall_time_camera_over_shrunk": round(camera["wall_s"] / shrunk["wall_s"], 3),
        "records_camera_over_shrunk": round(camera["records_bytes"] / shrunk["records_bytes"], 3),
        "accuracy_camera_minus_shrunk": round(camera["gate_test_accuracy"] - shrunk["gate_test_accuracy"], 4),
    }
    results["users"] = _users(args.work, os.path.join(args.work, "root_camera"))
    if args.ingest_throughput:
        results["ingest_step"] = ingest_throughput(os.path.join(args.work, "camera"), args.work)
    print(json.dumps(results, indent=2))
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
