"""How long a command takes to answer what needs no model: `--help`, and an obvious data mistake.

    python -m benchmarks.cli_latency [--repeats 5] [--out benchmarks/cli_latency_results.json]

Each command runs `--repeats` times in a fresh interpreter (as a user or a scheduler runs it); the
median and the slowest wall-clock seconds are reported. The data mistakes are a folder with one
class sub-folder and a flat folder of images (no class sub-folders), which must be refused with exit
code 3 before TensorFlow is imported or anything is written.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

from benchmarks.shared import stamp


def _folders(work: str) -> dict:
    one_class, flat = os.path.join(work, "one_class", "cats"), os.path.join(work, "flat")
    os.makedirs(one_class)
    os.makedirs(flat)
    for i in range(20):
        Image.new("RGB", (64, 64), (i * 10, 0, 0)).save(os.path.join(one_class, f"{i}.jpg"))
        Image.new("RGB", (64, 64), (0, i * 10, 0)).save(os.path.join(flat, f"{i}.jpg"))
    return {"one_class": os.path.dirname(one_class), "flat": flat}


def _time(args: list, repeats: int, expected: int) -> dict:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if done.returncode != expected:
            sys.exit(f"{args}: exit {done.returncode}, expected {expected}\n{done.stderr[-2000:]}")
    return {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "cli_latency_results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        folders = _folders(work)
        root = os.path.join(work, "root")
        commands = {
            "pipeline.run --help": (["pipeline.run", "--help"], 0),
            "pipeline.predict --help": (["pipeline.predict", "--help"], 0),
            "pipeline.validate --help": (["pipeline.validate", "--help"], 0),
            "pipeline.serve --help": (["pipeline.serve", "--help"], 0),
            "pipeline.run --data-dir ONE_CLASS_FOLDER": (
                ["pipeline.run", "--data-dir", folders["one_class"], "--pipeline-root", root],
                3,
            ),
            "pipeline.run --data-dir FLAT_FOLDER": (
                ["pipeline.run", "--data-dir", folders["flat"], "--pipeline-root", root],
                3,
            ),
        }
        measured = {name: _time(command, args.repeats, code) for name, (command, code) in commands.items()}
        assert not os.path.exists(root), "a refused run wrote its pipeline root"
    result = {
        **stamp(__doc__, "cli_latency", argv),
        "repeats": args.repeats,
        "seconds": measured,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
