"""The code blocks of the user-facing docs run: each is taken from the file as a user would copy it.

A snippet names its files relative to the directory it runs in (`export/model.onnx`,
`photo.jpg`); the test builds that directory from a real export and a test image.
"""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from components.common.formats.saved_model import SavedModelRunner
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split
from tests import export_models

pytestmark = pytest.mark.slow  # an export of the tiny model (shared with the export tests)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_block(markdown: str, containing: str) -> str:
    """The one ```python block of `markdown` that contains `containing`."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", markdown, re.S) if containing in b]
    assert len(blocks) == 1, f"{len(blocks)} python blocks contain {containing!r}"
    return blocks[0]


def test_readme_onnx_runtime_client_answers_as_the_saved_model(tmp_path_factory, tmp_path):
    export = export_models.tiny_export(tmp_path_factory)
    _, images, _ = read_split(Examples(export_models.tiny_ingest(tmp_path_factory)), "test")
    snippet = python_block((ROOT / "README.md").read_text(), "onnxruntime")
    os.symlink(export, tmp_path / "export")
    labels = ExportedModel(export).labels()
    saved = SavedModelRunner(ExportedModel(export).saved_model_dir()).predict_encoded(images)
    # PIL's resize is not TensorFlow's to the last bit: judge the snippet on images the model is sure of
    ranked = np.sort(saved, axis=1)
    sure = [i for i in range(len(images)) if ranked[i, -1] - ranked[i, -2] > 0.3][:6]
    assert len(sure) >= 3
    for image, probabilities in zip([images[i] for i in sure], saved[sure]):
        (tmp_path / "photo.jpg").write_bytes(image)
        out = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == labels[int(np.argmax(probabilities))], (out.stdout, probabilities)
