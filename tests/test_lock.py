"""One run per pipeline root: a second run exits with code 5 or waits; a killed run's lock does not block.

The holder of the lock in the first two tests is this test process itself (`pipeline.lock.hold`,
the same code a run uses), so the overlap is certain rather than a race between two imports.
"""

import signal
import subprocess
import sys
import time

import pytest
from pipeline_helpers import PROJECT, env, make_folder, pipeline_popen, pipeline_run

from pipeline import artifacts, lock

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("lock") / "images", per_class=10)


def test_second_run_exits_with_locked_code_and_says_who_holds_it(folder, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with lock.hold(artifacts.lock_path(str(root)), "holder-run"):
        proc = pipeline_run("--data-dir", folder, "--pipeline-root", root, "--stop-after", "ingest")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "holder-run" in proc.stderr and "--wait" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (root / "ingest").exists(), "the locked-out run must not have done anything"


def test_wait_queues_behind_the_running_one(folder, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with lock.hold(artifacts.lock_path(str(root)), "holder-run"):
        waiting = pipeline_popen("--data-dir", folder, "--pipeline-root", root, "--stop-after", "ingest", "--wait")
        first_line = waiting.stdout.readline()  # printed once it finds the lock taken
        assert "waiting for the lock held by run holder-run" in first_line, first_line + waiting.stderr.read()
        time.sleep(2)
        assert waiting.poll() is None, "the --wait run must keep waiting while the lock is held"
        assert not (root / "ingest").exists()
    out, err = waiting.communicate(timeout=240)
    assert waiting.returncode == 0, out + err
    assert "[pipeline] ingest: done" in out


def test_lock_of_a_killed_run_is_released(folder, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pipeline import lock\n"
            f"with lock.hold({artifacts.lock_path(str(root))!r}, 'killed-run'):\n"
            "    print('held', flush=True); time.sleep(600)",
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    proc = pipeline_run("--data-dir", folder, "--pipeline-root", root, "--stop-after", "ingest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stale lock from run killed-run" in proc.stdout
