"""Benchmark: the whole pipeline at N = 5,000, 20,000 and 50,000 images: time and memory per step.

    python -m benchmarks.scale [--sizes 5000,20000,50000] [--image-px 32] [--work DIR] [--weights FILE]
                               [-- extra pipeline.run flags]

For each N, a folder of N photo-like JPEGs (benchmarks/photos.py: lighting, soft objects tinted
by class, sensor noise; 10 classes) is made once (the smaller folders hard-link the largest one's
files, so they are the same images) and `python -m pipeline.run` runs on it from a fresh pipeline
root with the same flags, then once more with nothing changed (the cached rerun). While a run goes,
the resident memory of its whole process tree (Beam workers included) is sampled every 0.1 s and
charged to the step its progress lines say is running, so each step gets its seconds (from its
own "done in" line) and its peak RSS.

Then, beside the evaluate step, the same models are run directly on the same test images, each in
its fastest plain form: the SavedModel's `serve_tf_examples` in batches of 256, and each TFLite
variant on the same pixels (decoded once) in batches of 64 with the interpreter's threads
(`direct_models`).
`evaluate_vs_direct` is the evaluate step's time over that (target <= 2).

The JSON holds, per N, every step's seconds and peak RSS, the run's peak RSS, the cached rerun's
seconds and its share of the first run; and across N each step's growth exponent
(log time ratio / log N ratio between the smallest and largest N; 1 is linear).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import threading
import time

import psutil

from benchmarks.photos import generate_photos

_STEP = re.compile(r"\[pipeline\] (\w+): ")
_DONE = re.compile(r"\[pipeline\] (\w+): done in ([\d.]+) s")


def _folder(work: str, n: int, largest: int, px: int) -> str:
    """The N-image folder: the first N of the largest folder's images (round-robin classes), hard-linked."""
    source = os.path.join(work, f"photos_{largest}_{px}px")
    if not os.path.exists(os.path.join(source, ".complete")):
        generate_photos(source, largest, size=(px, px))
        open(os.path.join(source, ".complete"), "w").close()
    if n == largest:
        return source
    dest = os.path.join(work, f"photos_{n}_{px}px")
    if not os.path.exists(os.path.join(dest, ".complete")):
        for index in range(n):
            label = index % 10
            name = os.path.join(f"class_{label:02d}", f"photo_{index:06d}.jpg")
            os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
            if not os.path.exists(os.path.join(dest, name)):
                os.link(os.path.join(source, name), os.path.join(dest, name))
        open(os.path.join(dest, ".complete"), "w").close()
    return dest


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # the run ended between two samples
        return 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_pipeline(args: list) -> dict:
    """One `pipeline.run` with its process tree's RSS sampled: {exit_code, wall_s, steps: {step: {s, peak_rss_mb}}}."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    watched = psutil.Process(proc.pid)
    state = {"step": "startup", "peaks": {}, "peak": 0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            rss = _tree_rss(watched)
            state["peak"] = max(state["peak"], rss)
            state["peaks"][state["step"]] = max(state["peaks"].get(state["step"], 0), rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds, lines = {}, []
    for line in proc.stdout:
        lines.append(line)
        if m := _DONE.search(line):
            seconds[m.group(1)] = float(m.group(2))
        elif m := _STEP.search(line):
            state["step"] = m.group(1)
    code = proc.wait()
    stop.set()
    sampler.join()
    wall = time.monotonic() - start
    if code not in (0, 4):
        sys.exit(f"pipeline.run {' '.join(args)} exited {code}:\n{''.join(lines[-40:])}")
    steps = {name: {"s": s, "peak_rss_mb": round(state["peaks"].get(name, 0) / 2**20)} for name, s in seconds.items()}
    return {
        "exit_code": code,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(state["peak"] / 2**20),
        "steps": steps,
        "output_tail": "".join(lines[-12:]),
    }


def _report_bytes(root: str) -> int:
    runs = os.path.join(root, "runs")
    first = sorted(d for d in os.listdir(runs) if not d.startswith("."))[0]
    return os.path.getsize(os.path.join(runs, first, "report.html"))


def _latest(root: str, component: str) -> str:
    base = os.path.join(root, component)
    return os.path.join(base, sorted(d for d in os.listdir(base) if d[0].isdigit())[-1])


def direct_models(root: str) -> dict:
    """The seconds to run the evaluated models directly on the test split (a child process, imports excluded)."""
    code = (
        "import json, sys; from benchmarks.scale import _direct_child; "
        "print(json.dumps(_direct_child(sys.argv[1], sys.argv[2])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, _latest(root, "export"), _latest(root, "ingest")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if proc.returncode:
        sys.exit(f"direct model run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _direct_child(export_dir: str, ingest_dir: str) -> dict:
    from components.common import formats
    from components.common.formats.saved_model import SavedModelRunner
    from components.common.image_ops import preprocess
    from schemas.artifacts import Examples, ExportedModel
    from schemas.split_reader import read_split

    serialized, images, _ = read_split(Examples(ingest_dir), "test")
    export = ExportedModel(export_dir)
    timings = {}
    start = time.perf_counter()
    SavedModelRunner(ExportedModel(export_dir).saved_model_dir(), 256).predict_examples(serialized)
    timings["saved_model"] = time.perf_counter() - start
    start = time.perf_counter()
    pixels = preprocess(images, tuple(ExportedModel(export_dir).info()["image_size"]))
    timings["decode_once"] = time.perf_counter() - start
    for name, path in export.formats().items():
        if formats.get(name).reference:
            continue
        start = time.perf_counter()
        formats.get(name).open(path, os.cpu_count()).predict_pixels(pixels, 64)
        timings[name] = time.perf_counter() - start
    return {
        "images": len(serialized),
        "models_s": {k: round(v, 2) for k, v in timings.items()},
        "total_s": round(sum(timings.values()), 2),
    }


def exponents(per_n: dict) -> dict:
    """Each step's log(time ratio) / log(N ratio) between the smallest and largest N (None under 1 s)."""
    small, large = min(per_n), max(per_n)
    out = {}
    for step, first in per_n[small]["first_run"]["steps"].items():
        last = per_n[large]["first_run"]["steps"].get(step)
        if last is None or first["s"] < 1.0:
            out[step] = None
            continue
        out[step] = {
            "time": round(math.log(last["s"] / first["s"]) / math.log(large / small), 3),
            "peak_rss": round(
                math.log(max(last["peak_rss_mb"], 1) / max(first["peak_rss_mb"], 1)) / math.log(large / small), 3
            ),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="5000,20000,50000", help="comma-separated image counts")
    p.add_argument("--image-px", type=int, default=32, help="side of the generated images")
    p.add_argument("--work", default="/tmp/transferline-scale", help="where folders and pipeline roots go")
    p.add_argument("--weights", help="backbone weights file (offline: the shared pretrained one)")
    p.add_argument("--output", help="also write the JSON here")
    p.add_argument("extra", nargs="*", help="flags passed to pipeline.run (after --)")
    a = p.parse_args()
    sizes = sorted(int(s) for s in a.sizes.split(","))
    os.makedirs(a.work, exist_ok=True)
    flags = [*(["--weights", a.weights] if a.weights else []), *a.extra]
    per_n = {}
    for n in sizes:
        data = _folder(a.work, n, sizes[-1], a.image_px)
        root = os.path.join(a.work, f"root_{n}_{int(time.time())}")
        args = [
            "--runner=DirectRunner",
            "--data-dir",
            data,
            "--pipeline-root",
            root,
            "--serving-dir",
            os.path.join(root, "serving"),
            *flags,
        ]
        first = run_pipeline(args)
        rerun = run_pipeline(args)
        direct = direct_models(root)
        evaluate_s = first["steps"].get("evaluate", {}).get("s")
        per_n[n] = {
            "first_run": first,
            "cached_rerun_s": rerun["wall_s"],
            "cached_rerun_share": round(rerun["wall_s"] / first["wall_s"], 4),
            "direct_models": direct,
            "evaluate_vs_direct": round(evaluate_s / direct["total_s"], 2) if evaluate_s else None,
            "report_bytes": _report_bytes(root),
        }
        print(json.dumps({n: per_n[n]}, indent=1), file=sys.stderr, flush=True)
    result = {
        "benchmark": "scale",
        "cpus": os.cpu_count(),
        "image_px": a.image_px,
        "flags": flags,
        "sizes": {str(n): v for n, v in per_n.items()},
        "exponents": exponents(per_n) if len(per_n) > 1 else None,
    }
    text = json.dumps(result, indent=2)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
