"""Issue 5, must-show 2, with the REAL components: SIGKILL inside train, export and evaluate, rerun.

tests/test_resume.py kills the orchestration's stand-ins in every component; here the real
trainer, exporter and evaluator are killed from outside while they work, on one pipeline root:

  run 1 is killed in train (as soon as its first epoch's resume state is on disk),
  run 2 (the same command) is killed in export, run 3 in evaluate,
  run 4 completes with exit 0 and pushes version 1.

Each rerun must reuse what finished before it (lineage and its progress lines say so), the
killed training resumes from its work directory, no published output in the pipeline root lacks
its `_COMPLETE` marker, and the serving directory never shows anything but complete integer
versions (TF Serving loads every integer-named child).
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from pipeline_helpers import PROJECT, env, make_folder

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

COMPONENTS = ("ingest", "validate", "tune", "train", "audit", "export", "evaluate")
ARGS = (
    "--image-size",
    "32",
    "--weights",
    "none",
    "--batch-size",
    "16",
    "--epochs",
    "6",
    "--set",
    "export.formats=[tflite_float32]",
    "--set",
    "export.representative_examples=8",
    "--set",
    "evaluate.min_accuracy=0.0",
    "--set",
    "train.bn_recalibration_batches=5",
)


class Run:
    """`python -m pipeline.run` in its own process group, its stdout collected line by line."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.run", *map(str, args)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
            start_new_session=True,
        )
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition, what: str, timeout: float = 300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError(
                    f"the run ended (exit {self.proc.returncode}) before {what}:\n{self.output[-3000:]}"
                )
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"timed out waiting for {what}:\n{self.output[-3000:]}")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)  # the run and anything it started (Beam workers)
        self.proc.wait(timeout=60)
        self.reader.join(10)

    def finish(self, timeout=600) -> int:
        self.proc.wait(timeout=timeout)
        self.reader.join(10)
        return self.proc.returncode


def _epochs_done(root) -> int:
    """Epochs the running training has recorded in its resume state (train/_work/<key>/epochs.json)."""
    work = root / "train" / "_work"
    done = 0
    for path in work.glob("*/epochs.json") if work.exists() else ():
        try:
            done = max(done, len(json.loads(path.read_text())))
        except (OSError, ValueError):  # being replaced right now
            pass
    return done


def _writing(root, component) -> bool:
    """The component has opened its temporary output directory (it is inside its work)."""
    folder = root / component
    return folder.exists() and any(p.name.startswith(".tmp-") for p in folder.iterdir())


def _versions(serving) -> list:
    model_dir = serving / "classifier"
    return sorted(p.name for p in model_dir.iterdir() if p.name.isdigit()) if model_dir.exists() else []


def _check_nothing_half_visible(root, serving):
    for component in COMPONENTS:
        folder = root / component
        for path in folder.iterdir() if folder.exists() else ():
            if not path.name.startswith((".", "_")):
                assert (path / "_COMPLETE").exists(), f"{path} is published without its _COMPLETE marker"
    model_dir = serving / "classifier"
    for path in model_dir.iterdir() if model_dir.exists() else ():
        if path.name.isdigit():
            assert (
                (path / "_COMPLETE").exists()
                and (path / "saved_model.pb").exists()
                and (path / "assets.extra" / "push.json").exists()
            ), f"incomplete version visible: {path}"
        else:
            assert path.name.startswith("."), f"{path} would look like a version or a stray folder"


def test_sigkill_in_train_export_evaluate_then_rerun_reuses_and_completes(tmp_path):
    folder = make_folder(tmp_path / "images", classes=3, per_class=12, size=32)
    root, serving = tmp_path / "root", tmp_path / "serving"
    args = ("--data-dir", folder, "--pipeline-root", root, "--serving-dir", serving, *ARGS)

    # Run 1: killed in train once an epoch's resume state is written (and a little later).
    run = Run(*args)
    run.wait_for(lambda: "[pipeline] train: started" in run.output, "train started")
    run.wait_for(lambda: _epochs_done(root) >= 1, "the first epoch finished")
    run.kill()
    assert "[pipeline] train: done" not in run.output, "killed too late: train had finished"
    epochs_at_kill = _epochs_done(root)
    assert 1 <= epochs_at_kill < 6
    (work_key,) = [p.name for p in (root / "train" / "_work").iterdir()]  # where the resume state is
    _check_nothing_half_visible(root, serving)

    # Run 2: ingest and validate reused, train resumes; killed in export.
    run = Run(*args)
    run.wait_for(lambda: "[pipeline] export: started" in run.output, "export started", timeout=600)
    assert "stale lock from run" in run.output
    for component in ("ingest", "validate"):
        assert f"[pipeline] {component}: unchanged, reusing" in run.output, run.output
    assert "[pipeline] train: done in" in run.output
    train_dirs = [p for p in (root / "train").iterdir() if not p.name.startswith((".", "_"))]
    assert len(train_dirs) == 1
    history = json.loads((train_dirs[0] / "history.json").read_text())
    epochs = [e["epoch"] for e in history["epochs"]]
    assert epochs == list(range(6)), f"the resumed training records each epoch once: {epochs}"
    assert [s["epochs_run"] for s in history["stages"]] == [6]
    run.wait_for(lambda: _writing(root, "export"), "export writing")
    run.kill()
    assert "[pipeline] export: done" not in run.output, "killed too late: export had finished"
    _check_nothing_half_visible(root, serving)

    # Run 3: everything up to train reused; export reruns; killed in evaluate.
    run = Run(*args)
    run.wait_for(lambda: "[pipeline] evaluate: started" in run.output, "evaluate started", timeout=600)
    for component in ("ingest", "validate", "tune", "train", "audit"):
        assert f"[pipeline] {component}: unchanged, reusing" in run.output, run.output
    assert "left half-written by a killed run" in run.output  # the killed export's temporary, removed
    assert "[pipeline] export: done in" in run.output
    run.wait_for(lambda: _writing(root, "evaluate"), "evaluate writing")
    run.kill()
    assert "[pipeline] evaluate: done" not in run.output, "killed too late: evaluate had finished"
    _check_nothing_half_visible(root, serving)
    assert _versions(serving) == [], "nothing was pushed yet"

    # Run 4: completes, reusing every finished component; evaluate and push run.
    run = Run(*args)
    code = run.finish()
    out = run.output
    assert code == 0, out[-4000:]
    for component in ("ingest", "validate", "tune", "train", "audit", "export"):
        assert f"[pipeline] {component}: unchanged, reusing" in out, out[-4000:]
        assert f"[pipeline] {component}: started" not in out
    for component in ("evaluate", "push"):
        assert f"[pipeline] {component}: done in" in out
    assert "left half-written by a killed run" in out  # the killed evaluate's temporary, removed
    _check_nothing_half_visible(root, serving)
    assert _versions(serving) == ["1"]
    for component in COMPONENTS:
        assert not [p for p in (root / component).iterdir() if p.name.startswith(".tmp-")], component
        assert len([p for p in (root / component).iterdir() if not p.name.startswith((".", "_"))]) == 1, component
    assert not list((root / "train" / "_work").glob("*")), "the resume state is removed once train published"

    db = sqlite3.connect(root / "metadata.sqlite")
    killed = db.execute("SELECT component FROM executions WHERE status='interrupted' ORDER BY id").fetchall()
    assert [c for (c,) in killed] == ["train", "export", "evaluate"]
    runs = db.execute("SELECT status FROM runs ORDER BY rowid").fetchall()
    assert [s for (s,) in runs] == ["interrupted", "interrupted", "interrupted", "complete"]
    ran = db.execute("SELECT component FROM executions WHERE status='complete' ORDER BY id").fetchall()
    assert [c for (c,) in ran] == list(COMPONENTS) + ["push"], "each component completed exactly once"
    (train_fp,) = db.execute(
        "SELECT fingerprint FROM executions WHERE component='train' AND status='complete'"
    ).fetchone()
    assert train_fp.startswith(work_key), "the rerun trained in the killed training's work directory"
