"""Benchmark: the full demo run's wall time per component, and the cached rerun's (target <= 5%).

    python benchmarks/pipeline.py [--pipeline-root DIR] [-- extra pipeline.run flags]

Runs `python -m pipeline.run` twice on a fresh pipeline root (the built-in demo unless flags say
otherwise): the first run does everything, the second finds nothing changed. Prints one JSON
object: per-component seconds of the first run (from its progress lines), each run's wall time as
a user sees it (process start to exit, imports included) and inside the run (after imports), and
the ratios of the rerun to the first run. The machine's load average is included, because on a
shared machine it moves every number.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def _run(args: list) -> tuple:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipeline.run", *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline-root", help="fresh directory to use (default: a new temporary one)")
    p.add_argument("extra", nargs="*", help="flags passed to pipeline.run (after --)")
    a = p.parse_args()
    root = a.pipeline_root or tempfile.mkdtemp(prefix="transferline-bench-")
    args = ["--runner=DirectRunner", "--pipeline-root", root, *a.extra]
    load_before = os.getloadavg()
    first, first_wall = _run(args)
    second, second_wall = _run(args)
    result = {
        "benchmark": "pipeline",
        "pipeline_root": root,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "first_run": {"exit_code": first.returncode, "wall_s": round(first_wall, 1),
                      "inside_run_s": _inside(first.stdout), "components_s": _components(first.stdout)},
        "cached_rerun": {"exit_code": second.returncode, "wall_s": round(second_wall, 1),
                         "inside_run_s": _inside(second.stdout), "components_s": _components(second.stdout)},
    }
    result["ratio_wall"] = round(second_wall / first_wall, 4)
    result["ratio_inside_run"] = round(result["cached_rerun"]["inside_run_s"] / max(result["first_run"]["inside_run_s"], 1e-9), 4)
    result["target_ratio"] = 0.05
    result["target_met"] = result["ratio_wall"] <= 0.05
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
