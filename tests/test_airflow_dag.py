"""The generated Airflow DAG on the real Airflow 3 CLI (`airflow dags test`, SQLite, a temporary
AIRFLOW_HOME) running the real pipeline on a tiny folder (issue 36).

Airflow lives in `.venv-airflow` (created by .ci/run), as it would in production: the DAG's tasks call
the project's interpreter. One task fails once on purpose (the interpreter given to the DAG is a shim
that fails the first try of train) and its retry succeeds; a model the gate refuses leaves push
skipped and the DAG run green; a data error fails the run at once, with no retry and no later step.
"""

import json
import os
import pathlib
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pipeline_helpers import PROJECT

from pipeline import dag

AIRFLOW = PROJECT / ".venv-airflow" / "bin" / "airflow"
pytestmark = pytest.mark.skipif(
    not AIRFLOW.exists(),
    reason="Airflow is not installed here: python3 -m venv .venv-airflow && "
    ".venv-airflow/bin/pip install apache-airflow==3.3.2 (.ci/run does it)",
)

FAST = [
    "--image-size", "32", "--weights", "none", "--epochs", "1", "--batch-size", "16",
    "--set", "export.formats=[saved_model]", "--set", "audit.enabled=false",
    "--set", "evaluate.max_format_accuracy_drop=1.0",
]  # fmt: skip


def _noise_folder(dest: pathlib.Path, classes=3, per_class=30) -> pathlib.Path:
    """Images of pure noise: no model can beat chance on their test split, so a gate asking for accuracy
    1.0 refuses every model (27 test images at chance 1/3: blessed with probability 1e-13)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (dest / f"class_{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(dest / f"class_{c}" / f"{i}.png")
    return dest


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """run(dag_file_text) -> (CompletedProcess of `airflow dags test`, {task: (state, try)}, DAG run state)."""
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]

    def run(dag_id: str, dag_text: str):
        (home / "dags" / f"{dag_id}.py").write_text(dag_text)
        proc = subprocess.run([AIRFLOW, "dags", "test", dag_id], env=env, capture_output=True, text=True, timeout=900)
        db = sqlite3.connect(home / "airflow.db")
        try:
            run_id, state = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id=? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            rows = db.execute(
                "SELECT task_id, state, try_number, duration FROM task_instance WHERE dag_id=? AND run_id=?",
                (dag_id, run_id),
            ).fetchall()
        finally:
            db.close()
        run.seconds = {task: duration or 0.0 for task, _, _, duration in rows}  # each task's, of this run
        return proc, {task: (state, tries) for task, state, tries, _ in rows}, run_id, state

    return run


def _dag(dag_id: str, python: str, *pipeline_args) -> str:
    from pipeline import schedule

    out = subprocess.run(
        [sys.executable, "-m", "pipeline.schedule", "airflow", "--dag-id", dag_id, "--python", python,
         "--retries", "2", "--retry-delay", "1", "--", *map(str, pipeline_args)],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"NO_RETRY = {schedule.NO_RETRY!r}" in out
    return out


def test_a_retry_succeeds_and_an_unblessed_model_leaves_push_skipped_and_the_run_green(airflow, tmp_path):
    folder = _noise_folder(tmp_path / "images")
    root = tmp_path / "root"
    shim = tmp_path / "python"
    shim.write_text(
        "#!/bin/sh\n# the first try of the train task fails before it starts: an injected fault\n"
        f'case " $* " in *" --only train "*) if [ ! -e {tmp_path}/fault ]; then touch {tmp_path}/fault; '
        'echo "injected fault"; exit 1; fi;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    shim.chmod(0o755)
    dag_text = _dag(
        "transferline_retry", shim, "--data-dir", folder, "--pipeline-root", root, *FAST,
        "--splits", "train=0.5,val=0.2,test=0.3", "--set", "evaluate.min_accuracy=1.0",
    )  # fmt: skip
    proc, tasks, airflow_run, state = airflow("transferline_retry", dag_text)
    log = proc.stdout + proc.stderr
    assert state == "success", log[-4000:]
    assert tasks["train"] == ("success", 2), tasks  # failed once, retried
    assert tasks["push"][0] == "skipped" and tasks["report"][0] == "skipped", tasks  # exit 4: not blessed
    assert all(tasks[t] == ("success", 1) for t in ("ingest", "validate", "tune", "export", "evaluate")), tasks
    assert "injected fault" in log and "[pipeline] train: started" in log  # the step's own lines in the task log
    # one run in the lineage, under Airflow's run id, every step with its try number
    from pipeline import run as run_mod

    run_id = run_mod.safe_run_id(airflow_run)
    db = sqlite3.connect(root / "metadata.sqlite")
    steps = db.execute("SELECT component, status, attempt, exit_code FROM executions WHERE run_id=?", (run_id,))
    assert [tuple(s) for s in steps] == [
        ("ingest", "complete", 1, 0), ("validate", "complete", 1, 0), ("tune", "complete", 1, 0),
        ("train", "complete", 2, 0), ("audit", "complete", 1, 0), ("export", "complete", 1, 0),
        ("evaluate", "complete", 1, 0), ("push", "complete", 1, 4),
    ]  # fmt: skip
    assert db.execute("SELECT id, status, exit_code FROM runs").fetchall() == [(run_id, "not blessed", 4)]
    shown = subprocess.run(
        [sys.executable, "-m", "pipeline.runs", "show", run_id, "--pipeline-root", str(root)],
        cwd=PROJECT, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "try" in shown and "train" in shown
    assert (root / "runs" / run_id / "report.html").exists()


def test_a_data_error_fails_the_run_at_once_with_no_retry_and_no_later_step(airflow, tmp_path):
    folder = tmp_path / "one_class"
    (folder / "cats").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 32), (i, 0, 0)).save(folder / "cats" / f"{i}.png")
    dag_text = _dag("transferline_data", sys.executable, "--data-dir", folder, "--pipeline-root", tmp_path / "root")
    proc, tasks, _, state = airflow("transferline_data", dag_text)
    assert state == "failed", (proc.stdout + proc.stderr)[-3000:]
    assert tasks["ingest"] == ("failed", 1), tasks  # exit 3: no retry
    assert all(tasks[t][0] == "upstream_failed" for t in ("validate", "tune", "train", "push")), tasks
    assert tasks["report"][0] == "failed", tasks  # the run's last task ran and says no step got as far
    assert "exited 3 (usage or data error)" in proc.stdout + proc.stderr


KILLER = '''#!{python}
"""`python -m pipeline.run ARGS`, except that the first try of the train task is killed with SIGKILL as
soon as its first epoch's resume state is on disk (an injected fault: a node lost mid-step)."""
import json, os, pathlib, signal, subprocess, sys, time

args = sys.argv[1:]
step = args[args.index("--only") + 1] if "--only" in args else None
if step == "train" and not os.path.exists({mark!r}):
    open({mark!r}, "w").close()
    child = subprocess.Popen([{python!r}, *args])
    deadline = time.monotonic() + 900
    while child.poll() is None and time.monotonic() < deadline:
        for path in pathlib.Path({root!r}, "train", "_work").glob("*/epochs.json"):
            try:
                if json.loads(path.read_text()):
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                    print("injected fault: train killed with SIGKILL after its first epoch", flush=True)
                    sys.exit(137)
            except ValueError:  # being replaced right now
                pass
        time.sleep(0.2)
    sys.exit(1 if child.returncode is None else child.returncode)
os.execv({python!r}, [{python!r}, *args])
'''


@pytest.mark.slow
def test_the_demo_as_a_dag_then_unchanged_then_killed_in_train_and_retried(airflow, tmp_path):
    """Issue 36, must-show 2: the built-in demo end to end as an Airflow DAG whose train task is killed
    (SIGKILL) after an epoch and retried; then the same DAG again with nothing changed."""
    root = tmp_path / "root"
    shim = tmp_path / "python"
    shim.write_text(KILLER.format(python=sys.executable, mark=str(tmp_path / "killed"), root=str(root)))
    shim.chmod(0o755)
    dag_text = _dag("transferline_demo", shim, "--pipeline-root", root)
    proc, tasks, airflow_run, state = airflow("transferline_demo", dag_text)
    log = proc.stdout + proc.stderr
    assert state == "success", log[-4000:]
    assert "injected fault: train killed with SIGKILL" in log
    assert tasks["train"] == ("success", 2), tasks
    from pipeline import run as run_mod

    run_id = run_mod.safe_run_id(airflow_run)
    db = sqlite3.connect(root / "metadata.sqlite")
    trains = db.execute(
        "SELECT status, attempt FROM executions WHERE run_id=? AND component='train' ORDER BY id", (run_id,)
    ).fetchall()
    assert trains == [("interrupted", 1), ("complete", 2)], trains
    assert db.execute("SELECT id, status FROM runs").fetchall() == [(run_id, "complete")]
    (train_dir,) = [p for p in (root / "train").iterdir() if not p.name.startswith((".", "_"))]
    history = json.loads((train_dir / "history.json").read_text())
    epochs = [e["epoch"] for e in history["epochs"]]
    assert epochs == list(range(len(epochs))) and sum(s["epochs_run"] for s in history["stages"]) == len(epochs), (
        f"the resumed training records each epoch once: {epochs}"
    )

    # The same DAG again, nothing changed: every step a reuse, in a few seconds of task time.
    proc, tasks, second_run, state = airflow("transferline_demo", dag_text)
    assert state == "success", (proc.stdout + proc.stderr)[-3000:]
    second = run_mod.safe_run_id(second_run)
    statuses = db.execute("SELECT component, status FROM executions WHERE run_id=?", (second,)).fetchall()
    assert {status for _, status in statuses} == {"cached"} and len(statuses) == len(dag.names()), statuses
    assert all(state == "success" for state, _ in tasks.values()), tasks
    task_seconds = sum(airflow.seconds.values())
    assert task_seconds < 30, f"{task_seconds:.1f} s of task time for a run that reuses everything: {airflow.seconds}"
    print(f"unchanged rerun as a DAG: {task_seconds:.1f} s of task time {airflow.seconds}")
