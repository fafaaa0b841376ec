"""`python -m pipeline.run` as a user runs it: flags, Beam options, exit codes, no tracebacks.

One small generated folder (3 classes x 12 images of 32 px, tests/pipeline_helpers.py) keeps each subprocess to its import
time plus a second of ingest; the runs share one pipeline root where the assertions allow it.
"""

import pytest
from pipeline_helpers import make_folder, pipeline_run, published


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("cli") / "images")


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: ~10 s
def test_unknown_flag_is_a_usage_error_not_a_beam_warning(tmp_path):
    proc = pipeline_run("--runner=DirectRunner", "--no_such_flag=1", "--pipeline-root", tmp_path / "root")
    assert proc.returncode == 2, proc.stderr
    assert "unknown flag --no_such_flag" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "root").exists()


@pytest.mark.slow
def test_ingest_runs_with_beam_flags_then_reuses_its_output(folder, tmp_path):
    root = tmp_path / "root"
    proc = pipeline_run(
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
        "--data-dir",
        folder,
        "--pipeline-root",
        root,
        "--stop-after",
        "ingest",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "36 kept" in proc.stdout  # the ingest's own summary is printed
    assert "[pipeline] ingest: done in" in proc.stdout
    ingest_dirs = published(root / "ingest")
    assert len(ingest_dirs) == 1 and (ingest_dirs[0] / "_COMPLETE").exists()
    config_files = list((root / "runs").glob("*/config.yaml"))
    assert len(config_files) == 1 and str(folder) in config_files[0].read_text()

    again = pipeline_run("--data-dir", folder, "--pipeline-root", root, "--stop-after", "ingest")
    assert again.returncode == 0, again.stderr
    assert "ingest: unchanged, reusing" in again.stdout
    assert len(published(root / "ingest")) == 1


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: ~10 s
def test_bad_data_dir_gets_its_exit_code_and_no_traceback(tmp_path):
    proc = pipeline_run("--data-dir", tmp_path / "missing", "--pipeline-root", tmp_path / "root")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: ~10 s
def test_help_lists_flags_and_exit_codes():
    proc = pipeline_run("--help")
    assert proc.returncode == 0
    for flag in ("--data-dir", "--pipeline-root", "--stop-after", "--only", "--force", "--wait", "--config"):
        assert flag in proc.stdout
    assert "Exit codes" in proc.stdout


def test_a_runners_own_flags_are_known_once_its_module_is_loaded():
    """Issue 12: Beam registers DaskRunner's options only when its module is imported."""
    pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install -e '.[test]')")
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.common.beam_runner import make_pipeline
    from pipeline.run import beam_args

    args = ["--runner=DaskRunner", "--dask_client_address=tcp://127.0.0.1:1", "--dask_connection_timeout=1"]
    assert beam_args(args) == args  # no "unknown flag" usage error
    assert type(make_pipeline(PipelineOptions(args)).runner).__name__ == "DaskRunner"


def test_a_runner_whose_module_cannot_load_is_a_usage_error_naming_it():
    from components.common.errors import UsageError
    from pipeline.run import beam_args

    with pytest.raises(
        UsageError,
        match=r"--runner=no_such_package\.NopeRunner: its module no_such_package "
        r"cannot be loaded .* install",
    ):
        beam_args(["--runner=no_such_package.NopeRunner", "--some_flag=1"])
