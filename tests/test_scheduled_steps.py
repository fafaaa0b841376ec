"""One step per process, as a scheduler runs the pipeline: `--only STEP --run-id ID` attaches to run ID
and takes its inputs from that run's earlier steps; `--report --run-id ID` ends it (issue 36)."""

import json
import sqlite3

from pipeline import dag
from pipeline import run as run_mod

AIRFLOW_ID = "manual__2026-12-07T09:13:05.623123+00:00"
SAFE_ID = "manual__2026-12-07T09_13_05.623123_00_00"


def _executions(root, run_id):
    db = sqlite3.connect(root / "metadata.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM executions WHERE run_id=? ORDER BY id", (run_id,))]
    finally:
        db.close()


def _run_row(root, run_id):
    db = sqlite3.connect(root / "metadata.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return dict(db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone())
    finally:
        db.close()


def test_a_schedulers_run_id_is_made_safe_for_folders():
    assert run_mod.safe_run_id(AIRFLOW_ID) == SAFE_ID
    assert run_mod.safe_run_id("scheduled__2026-12-07T02:00:00+00:00") == "scheduled__2026-12-07T02_00_00_00_00"


def test_steps_run_one_per_process_make_one_run_and_the_report_ends_it(fake, capsys):
    for step in dag.names():
        assert fake("--only", step, "--run-id", AIRFLOW_ID, "--attempt", "1") == (0, [step])
    assert _run_row(fake.root, SAFE_ID)["status"] == "step done"
    assert fake("--report", "--run-id", AIRFLOW_ID) == (0, [])
    run = _run_row(fake.root, SAFE_ID)
    assert (run["status"], run["exit_code"]) == ("complete", 0)
    assert [e["component"] for e in _executions(fake.root, SAFE_ID)] == list(dag.names())
    assert {e["attempt"] for e in _executions(fake.root, SAFE_ID)} == {1}
    assert (fake.root / "runs" / SAFE_ID / "report.html").exists()
    # one run in the lineage, not one per task
    assert len(sqlite3.connect(fake.root / "metadata.sqlite").execute("SELECT id FROM runs").fetchall()) == 1


def test_a_step_takes_its_inputs_from_its_own_run_not_the_latest(fake, capsys):
    assert fake()[0] == 0  # an earlier whole run: its outputs must not stand in for this run's
    capsys.readouterr()
    assert fake("--only", "train", "--run-id", "nightly-2") == (2, [])
    err = capsys.readouterr().err
    assert "run nightly-2 has none yet" in err and "--only ingest --run-id nightly-2" in err


def test_a_retried_finished_step_is_a_reuse_recorded_with_its_attempt(fake, capsys):
    assert fake("--only", "ingest", "--run-id", "r1", "--attempt", "1") == (0, ["ingest"])
    assert fake("--only", "ingest", "--run-id", "r1", "--attempt", "2") == (0, [])
    rows = _executions(fake.root, "r1")
    assert [(e["status"], e["attempt"]) for e in rows] == [("complete", 1), ("cached", 2)]
    from pipeline import runs

    shown = runs.main(["show", "r1", "--pipeline-root", str(fake.root)])
    assert shown == 0
    assert "try" in capsys.readouterr().out


def test_the_report_of_a_failed_step_carries_its_exit_code(fake, monkeypatch, capsys):
    for step in ("ingest", "validate", "tune"):
        assert fake("--only", step, "--run-id", "r2")[0] == 0
    monkeypatch.setenv("FAKE_FAIL_IN", "train")
    assert fake("--only", "train", "--run-id", "r2") == (1, ["train"])
    assert fake("--report", "--run-id", "r2") == (1, [])
    run = _run_row(fake.root, "r2")
    assert run["status"] == "failed" and run["message"].startswith("train exited 1: RuntimeError: injected fault")
    assert (fake.root / "runs" / "r2" / "report.html").exists()


def test_not_blessed_ends_the_run_with_exit_4(fake, monkeypatch):
    monkeypatch.setenv("FAKE_NOT_BLESSED", "1")
    for step in dag.names():
        code, _ = fake("--only", step, "--run-id", "r3")
        assert code == (4 if step == "push" else 0)
    assert fake("--report", "--run-id", "r3") == (4, [])
    assert _run_row(fake.root, "r3")["status"] == "not blessed"


def test_a_step_never_run_leaves_the_run_incomplete(fake):
    assert fake("--only", "ingest", "--run-id", "r4")[0] == 0
    assert fake("--report", "--run-id", "r4") == (1, [])
    assert _run_row(fake.root, "r4")["message"].startswith("no step recorded for validate, tune")


def test_report_needs_a_run_id_and_the_graph_prints_without_tensorflow(capsys):
    assert run_mod.main(["--report"]) == 2
    assert "--report ends one scheduled run" in capsys.readouterr().err
    assert run_mod.main(["--print-graph"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in graph["steps"]] == list(dag.names())
    assert graph["exit_codes"]["not_blessed"] == 4
