"""Native libraries' log lines are kept off a tool's console and in the run's library.log (issue 10)."""

import subprocess
import sys

from pipeline import console

SCRIPT = r"""
import os, sys
from pipeline import console
console.install()
os.write(2, b"I0000 00:00:1796198556.784796   11843 port.cc:153] oneDNN custom operations are on.\n")
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8\n")
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
print("error: our own message", file=sys.stderr, flush=True)
console.attach(sys.argv[1])
os.write(2, b"E0000 00:00:1796198569.716076   11843 cuda_platform.cc:52] failed call to cuInit\n")
print("done", file=sys.stderr)
"""


def test_native_lines_go_to_the_library_log_and_our_lines_to_the_console(tmp_path):
    log = tmp_path / "library.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["error: our own message", "done"]
    kept = log.read_text()
    assert "oneDNN" in kept and "absl::InitializeLog" in kept and "cuInit" in kept and "XNNPACK" in kept


def test_installed_only_for_python_dash_m_pipeline_tools():
    assert console.started_as_tool(["python", "-m", "pipeline.run", "--data-dir", "x"])
    assert console.started_as_tool(["python", "-X", "importtime", "-m", "pipeline.validate"])
    assert not console.started_as_tool(["python", "-m", "pytest", "tests"])
    assert not console.started_as_tool(["python", "-c", "import pipeline"])
    assert not console.started_as_tool(["python", "script.py", "-m", "pipeline.run"])
