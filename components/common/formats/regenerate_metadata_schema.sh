#!/usr/bin/env bash
# Regenerates components/common/formats/metadata_schema_generated.py, the Python module of the TFLite model
# metadata schema (metadata_schema.fbs, the one MediaPipe Tasks and tflite-support read), so that the
# export writes MediaPipe-readable metadata in a plain `pip install` (mediapipe itself pins absl-py 2.x
# against TFMA's <2). The schema is taken from mediapipe's wheel on PyPI; the compiler is Debian's
# flatbuffers-compiler (flatc 2.0.8); the module runs on the `flatbuffers` runtime TensorFlow installs.
# Usage: bash components/common/formats/regenerate_metadata_schema.sh   (needs network for the wheel, and flatc)
set -euo pipefail
cd "$(dirname "$0")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v flatc >/dev/null || { echo "flatc not found: apt-get install flatbuffers-compiler"; exit 1; }
python3 -m pip download -q --no-deps mediapipe==1.2.2 -d "$work"
python3 -m zipfile -e "$work"/mediapipe-*.whl "$work/wheel"
flatc --python --gen-object-api --gen-onefile -o "$work/out" "$work/wheel/mediapipe/tasks/metadata/metadata_schema.fbs"
{
  echo "# The TFLite model metadata schema (metadata_schema.fbs from mediapipe 1.2.2's wheel, Apache License 2.0,"
  echo "# the schema tflite-support publishes), compiled by $(flatc --version) with --python --gen-object-api"
  echo "# --gen-onefile. Regenerate with components/common/formats/regenerate_metadata_schema.sh; do not edit."
  cat "$work/out/metadata_schema_generated.py"
} > metadata_schema_generated.py
echo "wrote $(pwd)/metadata_schema_generated.py"
