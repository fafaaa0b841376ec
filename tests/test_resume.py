"""SIGKILL anywhere, rerun the same command: finished components are reused, nothing half-written is read.

One pipeline root goes through a chain of runs, each killed (SIGKILL, from outside) while it is
inside the next component, until a last run completes. The components are the fast stand-ins of
tests/pipeline_helpers.py, which publish like the real ones (temporary sibling, then rename), so
what is tested here is the orchestration: stale temporaries removed under the lock, the killed
execution recorded as interrupted, completed ones reused, the trainer given the same work_dir
(where BackupAndRestore keeps its state) after the kill, and no incomplete version in serving.
The trainer's own resume-from-last-epoch is tested in tests/test_train_resume.py.
"""

import signal
import sqlite3

import pytest
from pipeline_helpers import fake_run_popen, make_folder, read_log

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

ALL = ["ingest", "validate", "tune", "train", "audit", "export", "evaluate", "push"]
KILLED_IN = ["ingest", "train", "export", "evaluate", "push"]


def _run_killed_in(component, args, log):
    proc = fake_run_popen(*args, log_path=log, hang_in=component)
    printed = []
    for line in proc.stdout:  # wait until the run is inside `component`, halfway through its output
        if line.strip() == f"inside {component}":
            break
        printed.append(line)
    else:
        raise AssertionError(f"the run never reached {component}: {proc.stderr.read()}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return "".join(printed)


def test_kill_in_each_component_then_rerun_completes_reusing_finished_work(tmp_path):
    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    root = tmp_path / "root"
    log = tmp_path / "calls.jsonl"
    args = ["--data-dir", folder, "--pipeline-root", root, "--weights", "none"]
    work_dirs = []
    start = 0  # the killed component is redone by the next run, then everything up to the next kill
    for component in KILLED_IN:
        before = len(read_log(log))
        printed = _run_killed_in(component, args, log)
        if component != KILLED_IN[0]:  # the run before was killed inside a component publishing to the root
            assert "left half-written by a killed run" in printed and "stale lock from run" in printed, printed
        calls = [c["component"] for c in read_log(log)[before:]]
        expected = ALL[start : ALL.index(component) + 1]
        assert calls == expected, f"reused {ALL[:start]} and ran {calls}; expected to run only {expected}"
        start = ALL.index(component)
        work_dirs += [c["work_dir"] for c in read_log(log)[before:] if c["component"] == "train"]
        if component != "push":  # its output was left as a temporary, never under its final name
            leftovers = [p for p in (root / component).iterdir() if p.name.startswith(".tmp-")]
            assert leftovers and not any((p / "_COMPLETE").exists() for p in leftovers)
            assert not [p for p in (root / component).iterdir() if not p.name.startswith((".", "_"))]

    before = len(read_log(log))
    last = fake_run_popen(*args, log_path=log)
    out, err = last.communicate(timeout=120)
    assert last.returncode == 0, out + err
    calls = read_log(log)[before:]
    assert [c["component"] for c in calls] == ["push"], calls
    assert "stale lock from run" in out
    for component in ALL[:-1]:
        assert f"{component}: unchanged, reusing" in out
        assert not [p for p in (root / component).iterdir() if p.name.startswith(".tmp-")]

    train_calls = [c for c in read_log(log) if c["component"] == "train"]
    assert len(train_calls) == 2 and work_dirs[0] == work_dirs[1], "killed and resumed training share a work_dir"
    versions = sorted(p.name for p in (root / "serving" / "classifier").iterdir() if p.name.isdigit())
    assert versions == ["1"], "one complete version: the killed push left none"

    db = sqlite3.connect(root / "metadata.sqlite")
    statuses = db.execute("SELECT component, status FROM executions WHERE status='interrupted'").fetchall()
    assert sorted(c for c, _ in statuses) == sorted(KILLED_IN)
    assert db.execute("SELECT COUNT(*) FROM runs WHERE status='interrupted'").fetchone()[0] == len(KILLED_IN)
