"""The ingest and the TFMA evaluation on distributed Beam runners with out-of-process workers (issue 12).

Each runner is started here as separate processes (benchmarks/clusters.py), as on a real cluster
but on localhost:
- Beam's portable runner: `local_job_service_main` (the job service) and `worker_pool_main` (an
  external SDK worker pool), then `pipeline.run --runner=PortableRunner --job_endpoint=...
  --environment_type=EXTERNAL --environment_config=...`;
- Beam's DaskRunner: `dask scheduler` and two `dask worker` processes, then `pipeline.run
  --runner=DaskRunner --dask_client_address=tcp://...`.
The ingest's output (records, tables, stats.json but its timing) must be byte-identical to the
in-process run's on the same folder; the evaluation's metrics equal to the in-process ones.
"""

import json
import os
import subprocess
import sys

import pytest
from image_fixtures import build_fixture_tree

from benchmarks.clusters import ENV, local_cluster
from components.common import fileio
from tests import export_models

pytestmark = pytest.mark.slow  # starts clusters: tens of seconds per test


@pytest.fixture(scope="module")
def portable_flags(tmp_path_factory):
    with local_cluster("portable", tmp_path_factory.mktemp("portable")) as (flags, _processes):
        yield flags


@pytest.fixture(scope="module")
def dask_flags(tmp_path_factory):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install -e '.[test]')")
    with local_cluster("dask", tmp_path_factory.mktemp("dask"), workers=2) as (flags, _processes):
        yield flags


def _ingest_cli(data_dir, root, flags) -> str:
    """`pipeline.run ... --stop-after ingest`; the published ingest directory."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.run",
            *flags,
            "--data-dir",
            str(data_dir),
            "--pipeline-root",
            str(root),
            "--stop-after",
            "ingest",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [d for d in fileio.listdir(str(root / "ingest")) if not d.startswith((".", "_"))]
    return str(root / "ingest" / run_dir)


def _tree(path) -> dict:
    """{relative path: bytes} of every file; stats.json without its wall time."""
    files = {}
    for folder, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(folder, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path)] = f.read()
    stats = json.loads(files.pop("stats.json"))
    stats.pop("seconds")
    files["stats.json"] = json.dumps(stats, sort_keys=True).encode()
    files.pop("_COMPLETE")  # its inventory holds stats.json's digest; every other file is compared itself
    return files


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in_process")
    build_fixture_tree(str(tmp / "tree"))
    return tmp / "tree", _tree(_ingest_cli(tmp / "tree", tmp / "root", []))


@pytest.mark.parametrize("runner", ["portable", "dask"])
def test_ingest_on_a_distributed_runner_writes_what_the_in_process_run_writes(runner, in_process, tmp_path, request):
    tree, expected = in_process
    flags = request.getfixturevalue(f"{runner}_flags")
    got = _tree(_ingest_cli(tree, tmp_path / "root", flags))
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []
    assert json.loads(got["stats.json"])["files"]["rejected"] > 0  # the tree's bad files were seen and counted


def _metrics(export, ingest, out, flags) -> dict:
    from apache_beam.options.pipeline_options import PipelineOptions

    import components.evaluate
    from components.common.beam_runner import load_runner_options

    load_runner_options(flags)
    result = components.evaluate.run(
        components.evaluate.EvaluateConfig(), export, ingest, None, str(out), beam_options=PipelineOptions(flags)
    )
    with open(os.path.join(result.output_dir, "metrics.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    export = export_models.tiny_export(tmp_path_factory)
    return export, export_models.tiny_ingest(tmp_path_factory)


def test_tfma_evaluation_on_the_portable_runner_equals_in_process(tiny_model, portable_flags, tmp_path):
    export, ingest = tiny_model
    expected = _metrics(export, ingest, tmp_path / "local", [])
    assert _metrics(export, ingest, tmp_path / "portable", portable_flags) == expected
    assert expected["metrics"]["candidate"]["overall"]["example_count"] == 24


def test_tfma_on_dask_runs_locally_and_says_so(tiny_model, dask_flags, tmp_path, capsys):
    """Beam's DaskRunner fails inside TFMA's metric combiners; the evaluation says so and runs them locally."""
    export, ingest = tiny_model
    expected = _metrics(export, ingest, tmp_path / "local", [])
    assert _metrics(export, ingest, tmp_path / "dask", dask_flags) == expected
    assert "TFMA runs on the local runner, not DaskRunner" in capsys.readouterr().out
