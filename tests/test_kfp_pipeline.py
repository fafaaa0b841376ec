"""The generated Kubeflow Pipelines v2 pipeline (issue 36): its compiled IR YAML has a task per step
with the graph's edges, retries, KFP's caching off, the project's image and the pipeline root's volume;
and `kfp.local` runs the same graph here, each lightweight task calling `pipeline.run` (with the
stand-in components: tests/test_airflow_dag.py runs the real ones under a scheduler), as one run of
the lineage ended by the exit handler's report.

kfp 2.16.1 and kfp-kubernetes 2.16.1 live in `.venv-kfp` (created by .ci/run).
"""

import pathlib
import sqlite3
import subprocess
import sys

import pytest
import yaml
from pipeline_helpers import PROJECT, make_folder

from pipeline import dag, schedule

KFP_PYTHON = PROJECT / ".venv-kfp" / "bin" / "python"
pytestmark = pytest.mark.skipif(
    not KFP_PYTHON.exists(),
    reason="kfp is not installed here: python3 -m venv .venv-kfp && .venv-kfp/bin/pip install kfp==2.16.1 "
    "kfp-kubernetes==2.16.1 (.ci/run does it)",
)


def _generate(tmp_path, *extra) -> pathlib.Path:
    out = tmp_path / "transferline_kfp.py"
    text = subprocess.run(
        [sys.executable, "-m", "pipeline.schedule", "kfp", "--image", "registry.example/transferline:1",
         "--pvc", "transferline-root", "--retries", "2", "--retry-delay", "30", *map(str, extra)],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    out.write_text(text)
    return out


def test_the_compiled_pipeline_has_the_graph_retries_no_cache_the_image_and_the_volume(tmp_path):
    script = _generate(tmp_path, "--", "--config", PROJECT / "pipeline.yaml")
    compiled = subprocess.run(
        [KFP_PYTHON, script, "compile", tmp_path / "pipeline.yaml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    spec, platform = yaml.safe_load_all((tmp_path / "pipeline.yaml").read_text())  # the IR, then its platform spec
    inner = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    edges = schedule.task_edges(dag.describe())
    assert {t["taskInfo"]["name"] for t in inner.values()} == set(dag.names())
    for task in inner.values():
        step = task["taskInfo"]["name"]
        assert sorted(inner[d]["taskInfo"]["name"] for d in task.get("dependentTasks", [])) == sorted(edges[step])
        assert task["retryPolicy"]["maxRetryCount"] == 2 and task["retryPolicy"]["backoffDuration"] == "30s"
        assert task["cachingOptions"].get("enableCache") is not True  # KFP writes {} for caching off
    root = spec["root"]["dag"]["tasks"]
    report = next(t for t in root.values() if t["taskInfo"]["name"] == "report")
    assert report["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"  # the exit handler
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(dag.names()) + 1
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "registry.example/transferline:1"
        assert "python -m pipeline.run" in container["command"][2]
        assert "--run-id" in container["args"] and "--wait" in container["args"]
    mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(mounts) == set(executors)
    assert all(m["pvcMount"][0]["mountPath"] == "/mnt/transferline" for m in mounts.values())


def test_kfp_local_runs_the_graph_as_one_run_of_the_lineage(tmp_path):
    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    shim = tmp_path / "python"  # `python -m pipeline.run ARGS` with the stand-in components
    shim.write_text(
        "#!/bin/sh\nshift 2\n"
        f'PYTHONPATH={PROJECT / "tests"} exec {sys.executable} -c "import sys, pipeline_helpers; '
        'pipeline_helpers.install_fakes(); from pipeline import run; sys.exit(run.main(sys.argv[1:]))" "$@"\n'
    )
    shim.chmod(0o755)
    root = tmp_path / "root"
    script = _generate(
        tmp_path, "--python", shim, "--", "--data-dir", folder, "--pipeline-root", root, "--weights", "none"
    )
    ran = subprocess.run([KFP_PYTHON, script, "local"], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-4000:]
    db = sqlite3.connect(root / "metadata.sqlite")
    (run_id, status, code), *others = db.execute("SELECT id, status, exit_code FROM runs").fetchall()
    assert not others and (status, code) == ("complete", 0)
    steps = db.execute("SELECT component, status FROM executions WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
    assert steps == [(step, "complete") for step in dag.names()]
    assert (root / "runs" / run_id / "report.html").exists()


def test_the_dockerfile_installs_as_the_readme_says():
    first = next(
        line for line in (PROJECT / "README.md").read_text().splitlines() if line.startswith("python3 -m venv")
    )
    install = first.split(" && .venv/bin/python -m pipeline.run")[0]
    assert f"RUN {install}" in (PROJECT / "Dockerfile").read_text()
