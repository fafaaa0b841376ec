"""Shared fixtures: where the real data in ../shared lives, and skipping cleanly without it.

CI always has ../shared beside the project; a user's fresh clone does not, so tests that need
the real photos or the pretrained backbone skip with a reason that says what is missing.
"""

import os
import pathlib

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
SIGN_DIGITS_DIR = SHARED_DIR / "datasets" / "sign-language-digits"
SHARED_WEIGHTS_DIR = SHARED_DIR / "weights"

# Keep TensorFlow quiet and on the CPU in tests, whatever machine runs them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `precision: auto` is float32 on every CPU here (no bfloat16 measurement): a test's result must not
# depend on the CPU it runs on. tests/test_precision.py tests the measured decision itself.
os.environ["TRANSFERLINE_PRECISION_AUTO"] = "float32"


def pytest_collection_modifyitems(session, config, items):
    """Modules with slow tests first, each module's tests together and in their order.

    The suite runs on every core with pytest-xdist, one module per worker at a time (`--dist loadfile`
    in pytest.ini: a module's trained fixtures are built once). Starting the long modules first and
    ending with the many short ones keeps the workers busy to the end instead of leaving one module of
    several minutes to run alone.
    """
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)  # stable: file order otherwise


def _require(path: pathlib.Path, what: str) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path}: it ships only beside the project in CI (../shared)")
    return path


@pytest.fixture(scope="session")
def sign_digits_dir() -> pathlib.Path:
    """The real 2,062-photo, 10-class folder in ../shared (read-only: never write into it)."""
    return _require(SIGN_DIGITS_DIR, "the sign-language-digits dataset")


@pytest.fixture(scope="session")
def shared_weights_dir() -> pathlib.Path:
    """The pretrained MobileNetV2 (alpha 0.35, 96 px) backbone in ../shared/weights."""
    return _require(SHARED_WEIGHTS_DIR / "mobilenetv2_0.35_96_cifar6_notop.keras", "the pretrained backbone").parent


@pytest.fixture(scope="session")
def ingested_sign_digits(sign_digits_dir, tmp_path_factory) -> pathlib.Path:
    """The real folder ingested ONCE per test session (default config); returns the ingest output dir.

    Read-only for tests: the trainer, export and validation tests share it instead of re-ingesting.
    """
    from components.ingest import IngestConfig, run

    output = tmp_path_factory.mktemp("ingest-sign-digits") / "ingest"
    run(IngestConfig(data_dir=str(sign_digits_dir)), str(output))
    return output


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """`pipeline.run` in-process on the stand-in components (tests/pipeline_helpers.py) over a tiny folder.

    Returns main(*extra_args) -> (exit code, the components that ran); `.root` and `.folder` are its paths.
    """
    from pipeline_helpers import install_fakes, make_folder, read_log

    from pipeline import run as run_mod

    install_fakes(monkeypatch)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    folder = make_folder(tmp_path / "images", per_class=2, size=8)
    base = ["--data-dir", str(folder), "--pipeline-root", str(tmp_path / "root"), "--weights", "none"]

    def main(*extra):
        before = len(read_log(log))
        code = run_mod.main(base + list(extra))
        return code, [c["component"] for c in read_log(log)[before:]]

    main.root = tmp_path / "root"
    main.folder = folder
    return main
