"""Push: blessed exports become increasing TF Serving versions, atomically; nothing else gets in."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import components.push
from components.common.errors import NotBlessedError, UsageError
from components.push import PushConfig
from pipeline import dag
from schemas.artifacts import ServingModel
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_models.tiny_export(tmp_path_factory)


@pytest.fixture
def blessed(tmp_path):
    return export_models.blessing_dir(tmp_path / "evaluate_ok", True)


@pytest.fixture
def not_blessed(tmp_path):
    return export_models.blessing_dir(tmp_path / "evaluate_bad", False, ["accuracy 0.3 is below the required 0.5"])


def _listing(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else None


def test_versions_increase_layout_is_tf_serving_and_old_ones_retire(tmp_path, exported, blessed):
    serving = str(tmp_path / "serving")
    config = PushConfig(model_name="digits", keep_versions=2)
    results = [components.push.run(config, exported, blessed, serving) for _ in range(3)]
    assert [r.version for r in results] == [1, 2, 3] and results[2].retired == [1]
    assert _listing(tmp_path / "serving" / "digits") == ["2", "3"]
    assert ServingModel(serving, "digits").latest().uri == results[2].path

    version = tmp_path / "serving" / "digits" / "3"
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    extra = version / "assets.extra"
    assert sorted(os.listdir(extra / "tflite")) == sorted(os.listdir(os.path.join(exported, "tflite")))
    assert (extra / "model.onnx").read_bytes() == open(os.path.join(exported, "model.onnx"), "rb").read()
    pushed = ServingModel(serving, "digits").latest().formats()
    assert pushed["saved_model"] == str(version) and pushed["onnx"] == str(extra / "model.onnx")
    assert (extra / "labels.txt").read_text().split() == ["cat", "dog", "fish"]
    record = json.loads((extra / "push.json").read_text())
    assert record["version"] == 3 and record["blessed"] and not record["forced"]
    assert json.loads((extra / "blessing.json").read_text())["blessed"]

    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    original = tf.saved_model.load(os.path.join(exported, "saved_model")).signatures["serving_default"]
    image = tf.io.encode_png(tf.fill([40, 48, 3], tf.constant(90, tf.uint8)))[None]
    np.testing.assert_array_equal(served(images=image)["probabilities"], original(images=image)["probabilities"])


def test_not_blessed_is_an_outcome_exit_4_and_leaves_serving_dir_unchanged(tmp_path, exported, blessed, not_blessed):
    serving = str(tmp_path / "serving")
    components.push.run(PushConfig(), exported, blessed, serving)
    before = _listing(tmp_path / "serving" / "classifier")
    result = components.push.run(PushConfig(), exported, not_blessed, serving)
    assert not result.pushed and not result.ok and result.output_dir == "" and result.version is None
    assert "accuracy 0.3 is below the required 0.5" in result.reason and result.reason in result.summary()
    assert result.properties()["pushed"] is False
    error = dag.node("push").failure(result.summary(), result.output_dir)  # how the pipeline ends the run
    assert isinstance(error, NotBlessedError) and error.exit_code == 4
    assert _listing(tmp_path / "serving" / "classifier") == before == ["1"]
    missing = components.push.run(PushConfig(), exported, str(tmp_path / "missing"), serving)
    assert not missing.pushed and "no evaluation result" in missing.reason


def test_force_push_is_loud_and_recorded(tmp_path, exported, not_blessed, capsys):
    result = components.push.run(PushConfig(), exported, not_blessed, str(tmp_path / "serving"), force=True)
    assert result.forced and "FORCED" in result.summary()
    assert "FORCED PUSH of a model that was NOT BLESSED" in capsys.readouterr().err
    record = json.loads(open(os.path.join(result.path, "assets.extra", "push.json")).read())
    assert record["forced"] and not record["blessed"]


@pytest.mark.parametrize("kill_at", ["copy", "rename"])
def test_sigkill_mid_push_leaves_no_partial_version_and_next_push_succeeds(tmp_path, exported, blessed, kill_at):
    """A push killed while copying files, or just before the rename, never shows a version."""
    serving = str(tmp_path / "serving")
    components.push.run(PushConfig(), exported, blessed, serving)
    # The push copies and renames through components.common.fileio (publish_dir, copy_tree) and
    # tf.io.gfile (its sidecar files): both are wrapped, the kill comes from whichever is called.
    script = textwrap.dedent(f"""
        import os, signal, tensorflow as tf
        import components.push
        from components.common import fileio
        calls = []
        def copying(real):
            def copy(src, dst, overwrite=False):
                calls.append(dst)
                if {kill_at!r} == "copy" and len(calls) == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(src, dst, overwrite=overwrite)
            return copy
        def renaming(real):
            def rename(src, dst, overwrite=False):
                if {kill_at!r} == "rename" and os.path.basename(dst).isdigit():
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(src, dst, overwrite=overwrite)
            return rename
        fileio.copy, fileio.rename = copying(fileio.copy), renaming(fileio.rename)
        tf.io.gfile.copy, tf.io.gfile.rename = copying(tf.io.gfile.copy), renaming(tf.io.gfile.rename)
        components.push.run(components.push.PushConfig(), {exported!r}, {blessed!r}, {serving!r})
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    model_dir = tmp_path / "serving" / "classifier"
    visible = [name for name in os.listdir(model_dir) if not name.startswith(".")]
    assert visible == ["1"]  # TF Serving sees only integer folders; the interrupted one is '.tmp-...'
    assert any(name.startswith(".tmp-") for name in os.listdir(model_dir))

    result = components.push.run(PushConfig(), exported, blessed, serving)
    assert result.version == 2
    assert sorted(os.listdir(model_dir)) == ["1", "2"]  # the leftover was cleaned up


def test_version_that_does_not_reload_is_moved_aside(tmp_path, exported, blessed):
    broken = tmp_path / "export"
    subprocess.run(["cp", "-r", exported, str(broken)], check=True)
    data = next((broken / "saved_model" / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # truncated weights
    with pytest.raises(components.push.ReloadError, match="does not load or run"):
        components.push.run(PushConfig(), str(broken), blessed, str(tmp_path / "serving"))
    assert [n for n in os.listdir(tmp_path / "serving" / "classifier") if n.isdigit()] == []


@pytest.mark.parametrize("bad", [dict(model_name="../x"), dict(model_name=""), dict(keep_versions=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(UsageError, match="push."):
        PushConfig(**bad).validate()
