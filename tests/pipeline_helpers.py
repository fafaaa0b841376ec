"""Helpers of the orchestration tests: a tiny class-per-folder tree and `pipeline.run` as a subprocess."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
from PIL import Image

PROJECT = pathlib.Path(__file__).resolve().parents[1]


def make_folder(dest: pathlib.Path, classes=3, per_class=12, size=32, seed=0, start=0) -> pathlib.Path:
    """A class-per-folder tree of small PNGs, one colour per class (easy to learn, fast to ingest).

    `start` numbers the files, so a second call with a higher start adds new images to the tree.
    """
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (dest / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            pixels[..., c % 3] += 150 + 40 * (c // 3)
            Image.fromarray(pixels).save(dest / f"class_{c}" / f"img_{i:03d}.png")
    return dest


def env(**extra) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def pipeline_run(*args, env_extra=None, timeout=900, module="pipeline.run"):
    """Run `python -m pipeline.run ARGS` in the project root (`module=None`: `python ARGS`); returns the
    CompletedProcess."""
    command = [sys.executable, *(["-m", module] if module else []), *map(str, args)]
    return subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=timeout, env=env(**(env_extra or {}))
    )


def pipeline_popen(*args, env_extra=None, module="pipeline.run"):
    """Start `python -m pipeline.run ARGS` without waiting (stdout and stderr piped, text)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**(env_extra or {})),
    )


def published(folder: pathlib.Path) -> list:
    """The published (non-temporary) outputs in a component folder of the pipeline root."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))


# --- fast stand-ins for the components, to test the orchestration itself -------------------------
# They take the same arguments as the real entries (schemas/ARTIFACTS.md), publish their output the
# same way (write to a temporary sibling, rename), and log each call to $FAKE_LOG as a JSON line.
# With FAKE_HANG_IN=<component> that component prints "inside <component>" halfway through writing
# its output and sleeps, so a test can SIGKILL the run in it. FAKE_FAIL_IN=<component> makes it raise
# (once only when FAKE_FAIL_MARK names a file: the first call creates it); FAKE_NOT_BLESSED=1 makes the
# evaluation refuse the model and push push nothing.


def _fake_step(component: str, out: str | None, **details):
    import json
    import time

    from components.common import publish

    log = os.environ.get("FAKE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"component": component, "out": out, **details}, default=str) + "\n")
    if os.environ.get("FAKE_FAIL_IN") == component:
        mark = os.environ.get("FAKE_FAIL_MARK")
        if not (mark and os.path.exists(mark)):
            if mark:
                open(mark, "w").close()
            raise RuntimeError(f"injected fault in {component}")
    if out is None:
        return
    with publish.publish_dir(out) as tmp:
        with open(os.path.join(tmp, "data.txt"), "w") as f:
            f.write(f"{component}\n")
        if details.get("manifest_of"):  # like the real manifest.csv: relative path and sha256 per file
            import hashlib

            root = details["manifest_of"]
            with open(os.path.join(tmp, "manifest.csv"), "w") as f:
                f.write("path,sha256\n")
                for folder, _dirs, files in os.walk(root):
                    for name in files:
                        path = os.path.join(folder, name)
                        with open(path, "rb") as g:
                            f.write(f"{os.path.relpath(path, root)},{hashlib.sha256(g.read()).hexdigest()}\n")
        if os.environ.get("FAKE_HANG_IN") == component:
            print(f"inside {component}", flush=True)
            time.sleep(600)


def _results():
    """The real result types (stand-ins return them, so the orchestration sees what it will see in a run)."""
    from components.evaluate import EvaluateResult
    from components.export import ExportResult
    from components.ingest import IngestResult
    from components.push import PushResult
    from components.train import TrainResult
    from components.validate import ValidateResult

    return IngestResult, ValidateResult, TrainResult, ExportResult, EvaluateResult, PushResult


def _fake_ingest(config, out, previous_dir=None, beam_options=None, reuse=False):
    _fake_step("ingest", out, previous=previous_dir, manifest_of=config.data_dir)
    return _results()[0](out, out, [], {}, {}, {}, found=1, kept=1, seconds=0.0)


def _fake_validate(config, ingest, previous, out):
    _fake_step("validate", out, ingest=ingest)
    return _results()[1](out, [])


def _fake_tune(config, train_config, ingest, out, work_dir=None):
    """Logs the call (and whether tuning was on); publishes the real tuner's output for tuning off."""
    import dataclasses

    from components.train.tune import run

    _fake_step("tune", None, ingest=ingest, enabled=config.enabled)
    return run(dataclasses.replace(config, enabled=False), train_config, ingest, out, work_dir)


def _fake_train(config, ingest, out, work_dir=None, warm_start_dir=None, cache_dir=None):
    _fake_step("train", out, ingest=ingest, work_dir=work_dir)
    return _results()[2](out, [], "fake", 1.0, None, 0.0, "float32", "default", None)


def _fake_audit(config, train, ingest, out, cache_dir=None):
    from components.audit import AuditResult

    _fake_step("audit", out, train=train)
    return AuditResult(out, "", 0, 1, {}, "error", 0.0)


def _fake_export(config, train, ingest, out):
    _fake_step("export", out, train=train)
    return _results()[3](out, out, {}, {}, {"max_abs_diff": {"saved_model": 0.0}}, 0.0)


def _fake_evaluate(config, export, ingest, baseline, out, beam_options=None, cache_dir=None):
    _fake_step("evaluate", out, export=export, baseline=baseline)
    blessed = os.environ.get("FAKE_NOT_BLESSED") != "1"
    return _results()[4](out, blessed, [], {"candidate": {"overall": {}}}, baseline, 0.0)


def _fake_push(config, export_dir, evaluate_dir, serving_dir, force=False):
    import time

    model_dir = os.path.join(serving_dir, config.model_name)
    if os.environ.get("FAKE_NOT_BLESSED") == "1":
        _fake_step("push", None, export=export_dir, version=None)
        return _results()[5](False, None, None, force, ["the gate did not bless the model"], 0.0)
    os.makedirs(model_dir, exist_ok=True)
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()]
    version = max(versions, default=0) + 1
    _fake_step("push", None, export=export_dir, version=version)
    final = os.path.join(model_dir, str(version))
    from components.common import publish

    with publish.publish_dir(final) as tmp:  # a SavedModel's layout, so tests can damage it
        os.makedirs(os.path.join(tmp, "variables"))
        for name in ("saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(f"{name} of {export_dir}\n")
        if os.environ.get("FAKE_HANG_IN") == "push":
            print("inside push", flush=True)
            time.sleep(600)
    return _results()[5](True, version, final, force, [], 0.0)


FAKES = {
    "ingest": _fake_ingest,
    "validate": _fake_validate,
    "tune": _fake_tune,
    "train": _fake_train,
    "audit": _fake_audit,
    "export": _fake_export,
    "evaluate": _fake_evaluate,
    "push": _fake_push,
}


def _fake_code_version(package=None):
    return "stand-ins"  # the real components' sources do not run here, so they must not count


def install_fakes(monkeypatch=None):
    """Make `pipeline.dag.entry_point` return the stand-ins (in this process)."""
    from pipeline import dag, fingerprint

    if monkeypatch is not None:
        monkeypatch.setattr(dag, "entry_point", lambda node: FAKES.get(node.name))
        monkeypatch.setattr(fingerprint, "code_version", _fake_code_version)
    else:
        dag.entry_point = lambda node: FAKES.get(node.name)
        fingerprint.code_version = _fake_code_version


def fake_run_popen(*args, log_path, hang_in=None):
    """`pipeline.run ARGS` in a subprocess whose components are the stand-ins."""
    code = (
        "import sys; import pipeline_helpers; pipeline_helpers.install_fakes(); "
        "from pipeline import run; sys.exit(run.main(sys.argv[1:]))"
    )
    extra = {"PYTHONPATH": str(PROJECT / "tests"), "FAKE_LOG": str(log_path), "FAKE_HANG_IN": hang_in or ""}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


def read_log(path) -> list:
    import json

    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- one real end-to-end run, shared by the test modules of one session ---------------------------
# A whole run (ingest -> push) costs about a minute even on 32 px images, so the modules that need
# one (orchestration, report, retraining) share it: the first to ask makes it, the others get the
# same pipeline root. Each later test only adds runs to that root or works on a copy of the folder.
_SHARED = {}

FAST_ARGS = (
    "--image-size",
    "32",
    "--weights",
    "none",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--set",
    "export.formats=[tflite_float32, tflite_dynamic_range, onnx]",
    "--set",
    "export.representative_examples=8",
    "--set",
    "evaluate.min_accuracy=0.0",
    # 3 test images: one that the int8/dynamic-range model scores differently from the float
    # model is a 0.33 drop; these runs test the orchestration, not the TFLite gate
    "--set",
    "evaluate.max_format_accuracy_drop=1.0",
)


HOSTILE_NAME = "-{} [v2] *? ünï"


def shared_first_run(tmp_path_factory):
    """(root, folder, args, CompletedProcess) of one real full run on a small folder (with broken files)."""
    if "first" not in _SHARED:
        base = tmp_path_factory.mktemp("e2e")
        # Every path a user gives is spelled as users do (issue 22, item 5): spaces, glob characters,
        # non-ASCII letters, a leading dash. The serving dir is inside the root, so it has them too.
        folder = make_folder(base / HOSTILE_NAME.format("images"), per_class=12)
        (folder / "class_0" / "empty.jpg").write_bytes(b"")
        (folder / "class_1" / "notes.png").write_text("not an image")
        root = base / HOSTILE_NAME.format("root")
        args = ("--data-dir", folder, "--pipeline-root", root, *FAST_ARGS)
        proc = pipeline_run(*args, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        _SHARED["first"] = (root, folder, args, proc)
    return _SHARED["first"]


# Lines a library prints on its own: native logs (I0000 ...], absl's preamble), Python warnings, and
# any mention of the libraries by name. The pipeline's own lines never match.
LIBRARY_NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::|Warning|warnings\.warn|WARNING:(?!\s*ingest)|tensorflow|apache_beam|"
    r"keras\.src|tfx_bsl|tensorflow_model_analysis|Traceback|TensorFlow Lite|XNNPACK|fully_quantize"
)


def library_noise(*texts: str) -> list:
    """The lines of `texts` that a library printed (see LIBRARY_NOISE)."""
    return [line for text in texts for line in text.splitlines() if LIBRARY_NOISE.search(line)]
