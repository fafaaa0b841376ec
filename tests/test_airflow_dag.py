"""The generated Airflow DAG on the real Airflow 3 CLI (`airflow dags test`, SQLite, a temporary
AIRFLOW_HOME) running the real pipeline on a tiny folder (issue 36).

Airflow lives in `.venv-airflow` (created by .ci/run), as it would in production: the DAG's tasks call
the project's interpreter. One task fails once on purpose (the interpreter given to the DAG is a shim
that fails the first try of train) and its retry succeeds; a model the gate refuses leaves push
skipped and the DAG run green; a data error fails the run at once, with no retry and no later step.
"""

import os
import pathlib
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pipeline_helpers import PROJECT

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
            tasks = {
                task: (state, tries)
                for task, state, tries in db.execute(
                    "SELECT task_id, state, try_number FROM task_instance WHERE dag_id=?", (dag_id,)
                )
            }
            run_id, state = db.execute("SELECT run_id, state FROM dag_run WHERE dag_id=?", (dag_id,)).fetchone()
        finally:
            db.close()
        return proc, tasks, run_id, state

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
