"""Orchestration and command-line entry points; no image, model or metric logic lives here."""
import os

# TensorFlow's C++ start-up lines (oneDNN, CUDA probing on CPU machines) would drown the run's own
# progress lines; set TF_CPP_MIN_LOG_LEVEL=0 yourself to see them when debugging TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
