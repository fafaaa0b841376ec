"""Benchmark: the demo run's wall time per component, the cached rerun, export and evaluation (issue 11).

    python -m benchmarks.pipeline [--pipeline-root DIR] [--repeats 3] [-- extra pipeline.run flags]

1. Runs `python -m pipeline.run` on a fresh pipeline root (the built-in demo unless flags say
   otherwise) and records each component's wall time from its progress lines, and the run's wall
   time as a user sees it (process start to exit, imports included).
2. Runs it again: every component is reused. Records that run's wall time, its ratio to the first
   run (target <= 0.02), and which of TensorFlow, Keras, TFMA and Beam it loaded (target: none).
3. Export: the first run's export time (target <= 10 s).
4. Evaluation, over the first run's export and the test split of its ingest, each in a fresh
   process with its libraries imported before the clock starts, model loading included in both:
   `evaluate`: the component's own path for the candidate (load the SavedModel, predict the
   serialized examples with `serve_tf_examples`, the TFMA run with every gate metric and slice);
   `plain_predict`: `keras.models.load_model` + tf.data parse + `decode_and_resize` +
   `model.predict`. Target: evaluate >= 0.9x plain_predict in images/s. The median of `--repeats`
   alternating measurements of each is reported (the machine's cores are shared).
One JSON object is printed; the machine's load average is in it, because load moves every number.
"""

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from schemas.split_reader import read_split

HEAVY = ("tensorflow", "keras", "tensorflow_model_analysis", "apache_beam")
_RUN_AND_REPORT_MODULES = (
    "import sys; from pipeline import run; code = run.main(sys.argv[1:]); "
    f"print('LOADED', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))); sys.exit(code)"
)


def _run(args: list, *, report_modules: bool = False) -> tuple:
    command = ["-c", _RUN_AND_REPORT_MODULES] if report_modules else ["-m", "pipeline.run"]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    wall = time.monotonic() - start
    if proc.returncode not in (0, 4):
        sys.exit(f"pipeline.run failed with exit code {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc, wall


def _components(stdout: str) -> dict:
    done = {m.group(1): float(m.group(2)) for m in re.finditer(r"\[pipeline\] (\w+): done in ([\d.]+) s", stdout)}
    reused = {m.group(1): 0.0 for m in re.finditer(r"\[pipeline\] (\w+): unchanged, reusing", stdout)}
    return {**reused, **done}


def _inside(stdout: str) -> float:
    return float(re.search(r"\(exit code \d+\) in ([\d.]+) s", stdout).group(1))


def _latest(root: str, component: str) -> str:
    return sorted(d for d in glob.glob(os.path.join(root, component, "2*")))[-1]


def _evaluate_child(export_dir: str, ingest_dir: str, work: str) -> dict:
    """The evaluation's candidate path, timed after imports."""
    from components.common.formats.saved_model import SavedModelRunner
    from components.evaluate import tfma_metrics
    from schemas.artifacts import Examples, ExportedModel

    start = time.perf_counter()
    serialized, _images, labels = read_split(Examples(ingest_dir), "test")
    predictions = {
        "candidate": SavedModelRunner(ExportedModel(export_dir).saved_model_dir()).predict_examples(serialized)
    }
    computed = tfma_metrics.compute(
        predictions, labels, ExportedModel(export_dir).labels(), 3, tempfile.mkdtemp(dir=work)
    )
    seconds = time.perf_counter() - start
    return {
        "images": len(labels),
        "seconds": seconds,
        "accuracy": computed["metrics"]["candidate"][tfma_metrics.OVERALL]["accuracy"],
    }


def _plain_child(train_dir: str, ingest_dir: str, work: str) -> dict:
    """A plain Keras loop over the same records, timed after imports."""
    import keras
    import numpy as np
    import tensorflow as tf

    from components.common.image_ops import decode_and_resize
    from schemas.artifacts import Examples, Model

    start = time.perf_counter()
    trained = Model(train_dir)
    model = keras.models.load_model(trained.model_path(), compile=False)
    size = tuple(trained.info()["image_size"])
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}
    dataset = (
        tf.data.TFRecordDataset(Examples(ingest_dir).shards("test"))
        .map(lambda r: tf.io.parse_single_example(r, spec))
        .map(lambda e: (decode_and_resize(e["image"], size), e["label"]))
        .batch(32)
    )
    correct = count = 0
    for pixels, y in dataset:
        correct += int(np.sum(model.predict_on_batch(pixels).argmax(1) == y.numpy()))
        count += len(y)
    return {"images": count, "seconds": time.perf_counter() - start, "accuracy": round(correct / count, 6)}


def _measure(kind: str, *dirs: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", "--child", kind, *dirs],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode != 0:
        sys.exit(f"{kind} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _evaluation(root: str, repeats: int) -> dict:
    export, ingest, train = _latest(root, "export"), _latest(root, "ingest"), _latest(root, "train")
    work = tempfile.mkdtemp(prefix="bench-eval-")
    ours, plain = [], []
    for _ in range(repeats):
        ours.append(_measure("evaluate", export, ingest, work))
        plain.append(_measure("plain", train, ingest, work))
    ours_s = statistics.median(m["seconds"] for m in ours)
    plain_s = statistics.median(m["seconds"] for m in plain)
    images = ours[0]["images"]
    return {
        "test_images": images,
        "evaluate_seconds": [round(m["seconds"], 2) for m in ours],
        "plain_predict_seconds": [round(m["seconds"], 2) for m in plain],
        "evaluate_images_per_s": round(images / ours_s, 1),
        "plain_predict_images_per_s": round(images / plain_s, 1),
        "ratio_evaluate_vs_plain": round(plain_s / ours_s, 3),
        "accuracy_tfma": ours[0]["accuracy"],
        "accuracy_plain": plain[0]["accuracy"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline-root", help="fresh directory to use (default: a new temporary one)")
    p.add_argument("--repeats", type=int, default=3, help="alternating evaluation measurements")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("extra", nargs="*", help="flags passed to pipeline.run (after --)")
    a = p.parse_args()
    if a.child:
        kind, *dirs = a.child
        print(json.dumps((_evaluate_child if kind == "evaluate" else _plain_child)(*dirs)))
        return
    root = a.pipeline_root or tempfile.mkdtemp(prefix="transferline-bench-")
    args = ["--runner=DirectRunner", "--pipeline-root", root, *a.extra]
    load_before = os.getloadavg()
    first, first_wall = _run(args)
    second, second_wall = _run(args, report_modules=True)
    loaded = json.loads(re.search(r"^LOADED (.*)$", second.stdout, re.M).group(1).replace("'", '"'))
    components = _components(first.stdout)
    evaluation = _evaluation(root, a.repeats)
    result = {
        "benchmark": "pipeline",
        "pipeline_root": root,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "first_run": {
            "exit_code": first.returncode,
            "wall_s": round(first_wall, 1),
            "inside_run_s": _inside(first.stdout),
            "components_s": components,
        },
        "cached_rerun": {
            "exit_code": second.returncode,
            "wall_s": round(second_wall, 2),
            "inside_run_s": _inside(second.stdout),
            "components_s": _components(second.stdout),
            "heavy_modules_loaded": loaded,
        },
        "ratio_cached_rerun_wall": round(second_wall / first_wall, 4),
        "evaluation": evaluation,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    result["targets"] = {
        "cached rerun <= 0.02x the first run (wall)": [
            result["ratio_cached_rerun_wall"],
            result["ratio_cached_rerun_wall"] <= 0.02,
        ],
        "cached rerun loads no TensorFlow, Keras, TFMA or Beam": [loaded, loaded == []],
        "export <= 10 s": [components.get("export"), (components.get("export") or 1e9) <= 10],
        "evaluation >= 0.9x a plain model.predict loop": [
            evaluation["ratio_evaluate_vs_plain"],
            evaluation["ratio_evaluate_vs_plain"] >= 0.9,
        ],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
