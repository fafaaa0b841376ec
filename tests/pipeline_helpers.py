"""Helpers of the orchestration tests: a tiny class-per-folder tree and `pipeline.run` as a subprocess."""
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

PROJECT = pathlib.Path(__file__).resolve().parents[1]


def make_folder(dest: pathlib.Path, classes=3, per_class=12, size=32, seed=0, start=0) -> pathlib.Path:
    """A class-per-folder tree of small PNGs, one colour per class (easy to learn, fast to ingest).

    `start` numbers the files, so a second call with a higher start adds new images to the tree.
    """
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (dest / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            pixels[..., c % 3] += 150 + 40 * (c // 3)
            Image.fromarray(pixels).save(dest / f"class_{c}" / f"img_{i:03d}.png")
    return dest


def env(**extra) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def pipeline_run(*args, env_extra=None, timeout=300, module="pipeline.run"):
    """Run `python -m pipeline.run ARGS` in the project root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=PROJECT, capture_output=True,
                          text=True, timeout=timeout, env=env(**(env_extra or {})))


def pipeline_popen(*args, env_extra=None, module="pipeline.run"):
    """Start `python -m pipeline.run ARGS` without waiting (stdout and stderr piped, text)."""
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(**(env_extra or {})))


def published(folder: pathlib.Path) -> list:
    """The published (non-temporary) outputs in a component folder of the pipeline root."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
