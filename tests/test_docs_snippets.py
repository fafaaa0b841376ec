"""Every code block of the user-facing docs runs, as a user would copy it, or says why it cannot here.

A block is marked by the HTML comment on the line before it: `<!-- snippet: NAME -->` (a test below
runs it), `<!-- not runnable here: WHY -->` (a cluster, a system service, the network), or
`<!-- run by CI: ... -->` (README's Quickstart). Blocks in ```text are pictures and listings,
not code. A snippet names its files relative to the directory it runs in (`export/`, `photo.jpg`,
`photos/`, `pipeline_root/`); each test builds that directory from a real export and test images.
"""

import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<lang>[a-z]*)\n(?P<code>.*?)```", re.S)
RUN_HERE = {  # snippet name -> the test that runs it
    "ingest-cli": "test_the_ingest_and_rerun_commands",
    "run-twice": "test_the_ingest_and_rerun_commands",
    "train-cli": "test_the_training_command",
    "predict-cli": "test_the_predict_and_validate_commands",
    "validate-cli": "test_the_predict_and_validate_commands",
    "savedmodel-python": "test_the_python_clients_answer_as_the_saved_model",
    "tflite-python": "test_the_python_clients_answer_as_the_saved_model",
    "onnx-python": "test_the_python_clients_answer_as_the_saved_model",
    "mediapipe-python": "test_the_mediapipe_client",
    "serve-cli": "test_the_serving_command_and_its_clients",
    "serve-clients": "test_the_serving_command_and_its_clients",
}


def blocks() -> list:
    """(page, language, marker, code) of every fenced block of README.md and docs/."""
    return [
        (page.relative_to(ROOT).as_posix(), m["lang"], m["marker"] or "", m["code"])
        for page in PAGES
        for m in FENCE.finditer(page.read_text())
    ]


def snippet(name: str) -> str:
    found = [code for _page, _lang, marker, code in blocks() if marker == f"snippet: {name}"]
    assert len(found) == 1, f"{len(found)} blocks are marked snippet: {name}"
    return found[0]


def test_every_block_is_run_or_says_why_not(capsys):
    run, not_runnable, by_ci = [], [], []
    for page, lang, marker, code in blocks():
        where = f"{page}: ```{lang} block starting {code.splitlines()[0][:60]!r}"
        assert lang, f"{where}: give the block a language (text for pictures and listings)"
        if lang == "text":
            continue
        if marker.startswith("snippet: "):
            assert marker[9:] in RUN_HERE, f"{where}: no test runs snippet {marker[9:]!r}"
            run.append(marker[9:])
        elif marker.startswith("not runnable here: ") and len(marker) > 40:
            not_runnable.append(f"{page}: {marker[19:]}")
        elif marker.startswith("run by CI: "):
            by_ci.append(page)
        else:
            pytest.fail(f"{where}: mark it <!-- snippet: NAME --> (and run it here) or <!-- not runnable here: WHY -->")
    assert sorted(run) == sorted(RUN_HERE), "each snippet name is used once"
    with capsys.disabled():
        print(
            f"\ndocs code blocks: {len(run)} run by tests, {len(by_ci)} by CI, {len(not_runnable)} not runnable here:"
        )
        for reason in not_runnable:
            print(f"  {reason}")


def test_the_scheduled_commands_parse():
    """The blocks that cannot run here (cron, systemd, a cluster, a download) still give pipeline.run
    arguments it parses, and a config file it reads."""
    from pipeline import config
    from pipeline import run as run_mod

    for code in (
        b for _p, lang, marker, b in blocks() if marker.startswith("not runnable here") and "pipeline.run" in b
    ):
        for line in code.replace("\\\n", " ").splitlines():
            if "-m pipeline.run" not in line or line.lstrip().startswith("#"):
                continue
            words = shlex.split(line.split("-m pipeline.run", 1)[1].split(">>")[0].split(" #")[0])
            args, beam = run_mod.build_parser().parse_known_args(words)
            assert not [w for w in beam if not w.startswith("--")], (line, beam)
            if args.config:  # nightly.yaml: what the page says it is, pipeline.yaml with the data folder set
                path = ROOT / ("pipeline.yaml" if args.config == "nightly.yaml" else args.config)
                config.build(config.merge(config.read_yaml(str(path)), {"ingest": {"data_dir": "/srv/photos"}}))


# --- running them ------------------------------------------------------------------------------------


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _shell(code: str, cwd, **substitutions) -> list:
    """Run each command of a bash block in `cwd` (`python` is this interpreter); the completed processes."""
    done = []
    for line in code.replace("\\\n", " ").splitlines():
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        for old, new in substitutions.items():
            command = command.replace(old, new)
        words = shlex.split(command)
        assert words[0] == "python", command
        done.append(
            subprocess.run(
                [sys.executable, *words[1:]], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900
            )
        )
    return done


def _python(code: str, cwd) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from tests import export_models

    return export_models.tiny_export(tmp_path_factory)


@pytest.fixture(scope="module")
def sure_images(tmp_path_factory, export_dir):
    """Test images the SavedModel is sure of (PIL's resize is not TensorFlow's to the last bit), with its labels."""
    from components.common.formats.saved_model import SavedModelRunner
    from schemas.artifacts import Examples, ExportedModel
    from schemas.split_reader import read_split
    from tests import export_models

    _, images, _ = read_split(Examples(export_models.tiny_ingest(tmp_path_factory)), "test")
    labels = ExportedModel(export_dir).labels()
    saved = SavedModelRunner(ExportedModel(export_dir).saved_model_dir()).predict_encoded(images)
    ranked = np.sort(saved, axis=1)
    sure = [i for i in range(len(images)) if ranked[i, -1] - ranked[i, -2] > 0.3][:3]
    assert len(sure) >= 2
    return [(images[i], labels[int(np.argmax(saved[i]))]) for i in sure]


def _workdir(tmp_path, export_dir, image: bytes):
    os.symlink(export_dir, tmp_path / "export")
    (tmp_path / "photo.jpg").write_bytes(image)
    return tmp_path


@pytest.mark.slow  # an export of the tiny model (shared with the export tests)
@pytest.mark.parametrize("name", ["savedmodel-python", "tflite-python", "onnx-python"])
def test_the_python_clients_answer_as_the_saved_model(name, export_dir, sure_images, tmp_path):
    """Each image as it is and stored a quarter turn off with the EXIF tag that makes it upright, as
    phones write portrait photos: the client's answer is the SavedModel's for the upright image."""
    import io

    from PIL import Image

    from tests.camera_encodings import stored_rotated

    for i, (image, label) in enumerate(sure_images):
        rotated = stored_rotated(Image.open(io.BytesIO(image)).convert("RGB"), 6, quality=95)
        for kind, data in (("as_is", image), ("rotated", rotated)):
            (tmp_path / f"{i}{kind}").mkdir()
            assert _python(snippet(name), _workdir(tmp_path / f"{i}{kind}", export_dir, data)) == label, kind


@pytest.mark.slow
def test_the_mediapipe_client(export_dir, sure_images, tmp_path):
    from tests.test_tflite_metadata import needs_mediapipe

    if needs_mediapipe.args[0]:
        pytest.skip(needs_mediapipe.kwargs["reason"])
    image, label = sure_images[0]
    assert _python(snippet("mediapipe-python"), _workdir(tmp_path, export_dir, image)) == label


@pytest.mark.slow
def test_the_predict_and_validate_commands(export_dir, sure_images, tmp_path):
    image, label = sure_images[0]
    cwd = _workdir(tmp_path, export_dir, image)
    (predicted,) = _shell(snippet("predict-cli"), cwd)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    row = json.loads(predicted.stdout.splitlines()[0])
    assert row["path"] == "photo.jpg" and row["label"] == label and len(row["labels"]) == 2, row
    for i, (image, label) in enumerate(sure_images):  # a folder of <class>/ images, as the page says
        (cwd / "photos" / label).mkdir(parents=True, exist_ok=True)
        (cwd / "photos" / label / f"{i}.jpg").write_bytes(image)
    (validated,) = _shell(snippet("validate-cli"), cwd)
    assert validated.returncode == 0, validated.stdout + validated.stderr[-2000:]  # images the model is sure of
    assert f"{len(sure_images)} images" in validated.stdout and "accuracy 1.0" in validated.stdout, validated.stdout


@pytest.mark.slow
def test_the_ingest_and_rerun_commands(tmp_path):
    from tests.pipeline_helpers import make_folder

    for page in ("data", "orchestration"):
        make_folder(tmp_path / page / "photos", classes=3, per_class=12)
    (ingested,) = _shell(snippet("ingest-cli"), tmp_path / "data")
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    assert (tmp_path / "data" / "pipeline_root" / "validate").is_dir()
    first, second, listed = _shell(snippet("run-twice"), tmp_path / "orchestration")
    assert first.returncode == second.returncode == listed.returncode == 0, (first.stderr + second.stderr)[-2000:]
    assert "ingest: unchanged, reusing" in second.stdout + second.stderr, second.stdout
    runs = [line for line in listed.stdout.splitlines() if "ingest:" in line]
    assert len(runs) == 2 and "ingest:reused" in runs[0] and "ingest:ran" in runs[1], listed.stdout  # newest first


@pytest.mark.slow
def test_the_training_command(tmp_path, shared_weights_dir):
    from tests.pipeline_helpers import make_folder

    os.symlink(shared_weights_dir.parent, tmp_path / "shared")  # ../shared seen from the working directory
    cwd = tmp_path / "work"
    make_folder(cwd / "photos", classes=3, per_class=12, size=96)
    (trained,) = _shell(snippet("train-cli"), cwd)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (train_dir,) = [p for p in (cwd / "pipeline_root" / "train").iterdir() if not p.name.startswith((".", "_"))]
    history = json.loads((train_dir / "history.json").read_text())
    assert [s["name"] for s in history["stages"]] == ["head", "finetune"], history["stages"]
    assert not (cwd / "pipeline_root" / "export").exists(), "--stop-after train stops before the export"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_serving_command_and_its_clients(export_dir, sure_images, tmp_path):
    """The server as the page starts it (free ports instead of 8501 and 8500, which may be taken here),
    and the page's REST and gRPC clients against it."""
    from tests import serve_helpers

    image, label = sure_images[0]
    cwd = _workdir(tmp_path, export_dir, image)
    serve_helpers.push(export_dir, cwd / "pipeline_root" / "serving", tmp_path, "docs")
    ports = {"8501": str(_free_port()), "8500": str(_free_port())}
    (command,) = [line for line in snippet("serve-cli").splitlines() if line.strip()]
    for old, new in ports.items():
        command = command.replace(old, new)
    server = subprocess.Popen(
        [sys.executable, *shlex.split(command)[1:]], cwd=cwd, env=_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout.readline().startswith("serving classifier at http://")
        assert server.stdout.readline().startswith("serving classifier over gRPC at ")  # once a version is loaded
        code = snippet("serve-clients")
        for old, new in ports.items():
            code = code.replace(old, new)
        rest, grpc_label = _python(code, cwd).splitlines()
        assert rest == label and grpc_label in (f"[b'{label}']", f"[{label!r}]"), (rest, grpc_label)
    finally:
        server.terminate()
        server.wait(timeout=60)
