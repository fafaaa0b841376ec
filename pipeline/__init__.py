"""Orchestration and command-line entry points; no image, model or metric logic lives here."""

import os
import sys

# TensorFlow's C++ start-up lines (oneDNN, CUDA probing on CPU machines) would drown the run's own
# progress lines; set TF_CPP_MIN_LOG_LEVEL=0 yourself to see them when debugging TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if getattr(sys, "orig_argv", None):  # `python -m pipeline.<tool>`: the lines that level misses (console.py)
    from pipeline import console

    if console.started_as_tool(sys.orig_argv):
        console.install()
