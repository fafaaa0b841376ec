"""benchmarks/scale.py at a few hundred images, so the benchmark does not rot between its real runs
(5,000-50,000 images, docs/benchmarks.md, "Scale"): every step timed and measured, the exponents, the direct runs."""

import json
import subprocess
import sys

import pytest
from pipeline_helpers import PROJECT, env

pytestmark = pytest.mark.slow


def test_the_scale_benchmark_runs_end_to_end_at_a_few_hundred_images(tmp_path):
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
            "--sizes",
            "150,300",
            "--image-px",
            "32",
            "--work",
            str(tmp_path),
            "--output",
            str(out),
            "--",
            "--image-size",
            "32",
            "--weights",
            "none",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--set",
            "export.formats=[tflite_float32]",
            "--set",
            "export.representative_examples=8",
            "--set",
            "evaluate.min_accuracy=0.0",
            "--set",
            "evaluate.max_format_accuracy_drop=1.0",
        ],
        cwd=PROJECT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["sizes"]) == {"150", "300"}
    for n, run in result["sizes"].items():
        steps = run["first_run"]["steps"]
        assert set(steps) == {"ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"}, steps
        assert all(step["peak_rss_mb"] > 100 for name, step in steps.items() if step["s"] > 0.5), steps
        assert run["first_run"]["peak_rss_mb"] >= max(step["peak_rss_mb"] for step in steps.values())
        assert 0 < run["cached_rerun_s"] < run["first_run"]["wall_s"]
        assert set(run["direct_models"]["models_s"]) == {"saved_model", "decode_once", "tflite_float32"}
        assert run["evaluate_vs_direct"] > 0 and run["report_bytes"] > 1000
    assert set(result["exponents"]) == {"ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"}
