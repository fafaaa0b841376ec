"""`python -m pipeline.validate`: exit 0 only when every threshold holds; documented codes otherwise."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pipeline_helpers import library_noise

from pipeline import validate
from tests import export_models
from tests.ingest_format import synthetic_image

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    return export_models.tiny_ingest(tmp_path_factory)


def test_good_model_passes_with_exit_0(tmp_path_factory, ingest, capsys):
    good = export_models.tiny_export(tmp_path_factory)
    assert validate.main([good, ingest, "--min-accuracy", "0.9", "--min-class-recall", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "PASS accuracy [overall]" in out and "PASS recall [label=fish]" in out and "PASSED" in out


def test_bad_model_fails_with_exit_4_and_names_the_check(tmp_path_factory, ingest, capsys, tmp_path):
    bad = export_models.tiny_export(tmp_path_factory, epochs=1, variants=("float32",), learning_rate=0.0001)
    capsys.readouterr()  # the export's own lines
    code = validate.main([bad, ingest, "--min-accuracy", "0.9", "--json", "--output-dir", str(tmp_path / "out")])
    assert code == 4
    report = json.loads(capsys.readouterr().out)
    assert not report["passed"]
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["min_accuracy"]
    saved = json.load(open(tmp_path / "out" / "report.json"))
    assert "below the required 0.9" in saved["failed"][0]


def test_usage_and_data_errors_have_their_codes(tmp_path_factory, ingest, tmp_path, capsys):
    good = export_models.tiny_export(tmp_path_factory)
    assert validate.main([str(tmp_path / "no_model"), ingest]) == 2
    assert "not found" in capsys.readouterr().err
    assert validate.main([good, ingest, "--min-accuracy", "2"]) == 2
    assert validate.main([good, str(tmp_path / "no_data")]) == 3
    assert validate.main([good, ingest, "--split", "nosuchsplit"]) == 3
    assert "no 'nosuchsplit' split" in capsys.readouterr().err


def test_cli_validates_an_int8_tflite_on_a_raw_image_folder(tmp_path_factory, tmp_path):
    good = export_models.tiny_export(tmp_path_factory)
    rng = np.random.default_rng(7)
    for label, name in enumerate(["cat", "dog", "fish"]):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(synthetic_image(label, 3, (40, 48), rng)).save(tmp_path / "images" / name / f"{i}.png")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.validate",
            os.path.join(good, "tflite", "model_int8.tflite"),
            str(tmp_path / "images"),
            "--min-accuracy",
            "0.9",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "(tflite_int8): 15 images" in proc.stdout and "PASSED" in proc.stdout
    assert library_noise(proc.stdout, proc.stderr) == [], "TFMA's, Beam's and TensorFlow's lines stay off the console"


def test_images_the_model_cannot_score_are_named_with_exit_3(tmp_path_factory, tmp_path, capsys):
    """A 5,000 x 3,000 photo is over the SavedModel's pixel budget (export.max_image_pixels, 12.5 MP):
    the run names it and exits 3 (data), instead of failing as a whole."""
    from tests import hostile_images

    good = export_models.tiny_export(tmp_path_factory)
    rng = np.random.default_rng(0)
    for label, name in enumerate(["cat", "dog", "fish"]):
        (tmp_path / "images" / name).mkdir(parents=True)
        Image.fromarray(synthetic_image(label, 3, (40, 48), rng)).save(tmp_path / "images" / name / "0.jpg")
    (tmp_path / "images" / "dog" / "1.png").write_bytes(hostile_images.png_bomb(5000, 3000))
    assert validate.main([good, str(tmp_path / "images")]) == 3
    err = capsys.readouterr().err
    assert "cannot score 1 of the 4 test images" in err
    assert "PNG of 5000 x 3000 pixels decodes to 15000000 pixels, over the model limit of 12500000" in err


def test_a_baseline_is_the_gates_paired_test_with_its_interval(tmp_path_factory, ingest, capsys):
    """Issue 35: release CI had no baseline, so validate did not run "the same checks as the gate"."""
    good = export_models.tiny_export(tmp_path_factory)
    bad = export_models.tiny_export(tmp_path_factory, epochs=1, variants=("float32",), learning_rate=0.0001)
    capsys.readouterr()  # the exports' own lines
    assert validate.main([good, ingest, "--baseline", bad]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "max_accuracy_drop_vs_baseline" in x)
    assert line.startswith("PASS") and "on 24 images" in line and "interval" in line
    assert validate.main([bad, ingest, "--baseline", good, "--min-accuracy", "0", "--json"]) == 4
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"] if not c["passed"]] == ["max_accuracy_drop_vs_baseline"]
    assert validate.main([good, ingest, "--min-accuracy", "2"]) == 2
    assert "(given as --min-accuracy)" in capsys.readouterr().err
