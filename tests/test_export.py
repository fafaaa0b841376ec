"""Export: the three serving signatures, the TFLite variants with their sidecar, and the parity check."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import components.export
from components.common.errors import DataError, UsageError
from components.common.formats import tflite
from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from components.common.trained_model import float32_rebuild
from components.export import calibration, parity
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_models.tiny_export(tmp_path_factory)


@pytest.fixture(scope="module")
def test_split(tmp_path_factory):
    return read_split(Examples(export_models.tiny_ingest(tmp_path_factory)), "test")


def _keras_model(export_dir):
    """The trained Keras model with the export's temperature folded in, as the export did."""
    train_dir = os.path.join(os.path.dirname(export_dir), "train")
    model = keras.models.load_model(os.path.join(train_dir, "model.keras"))
    calibration.fold_temperature(model, ExportedModel(export_dir).info()["calibration"]["temperature"])
    return model


def test_signatures_return_keras_probabilities_and_label_strings(exported, test_split):
    serialized, images, labels = test_split
    model = tf.saved_model.load(os.path.join(exported, "saved_model"))
    assert {"serving_default", "serve_images", "serve_tf_examples"} <= set(model.signatures)
    expected = _keras_model(exported).predict(preprocess(images, (32, 32)), verbose=0)

    by_bytes = model.signatures["serving_default"](images=tf.constant(images))
    by_example = model.signatures["serve_tf_examples"](examples=tf.constant(serialized))
    for out in (by_bytes, by_example):
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    classes = by_bytes["classes"].numpy()
    assert classes.shape == (len(images), 3)
    top1 = [c.decode() for c in classes[:, 0]]
    assert top1 == [["cat", "dog", "fish"][i] for i in expected.argmax(1)]
    scores = by_bytes["scores"].numpy()
    assert np.all(np.diff(scores, axis=1) <= 0)  # sorted, best first
    assert np.mean(expected.argmax(1) == labels) >= 0.9  # the tiny model did learn the synthetic classes


def test_serve_images_accepts_uint8_of_any_size(exported, test_split):
    _, images, _ = test_split
    model = tf.saved_model.load(os.path.join(exported, "saved_model"))
    pixels = tf.io.decode_jpeg(images[0])  # 40x48, resized to 32x32 inside the graph
    big = tf.image.resize(pixels, (100, 70), method="nearest")
    for batch in (pixels[None], tf.cast(big, tf.uint8)[None]):
        out = model.signatures["serve_images"](images=batch)
        assert out["probabilities"].shape == (1, 3)
    same = model.signatures["serve_images"](images=pixels[None])["probabilities"]
    by_bytes = model.signatures["serving_default"](images=tf.constant(images[:1]))["probabilities"]
    np.testing.assert_allclose(same.numpy(), by_bytes.numpy(), atol=1e-5)


def test_tflite_variants_sidecar_and_parity_report(exported, test_split):
    _, images, labels = test_split
    for variant in ("float32", "float16", "dynamic_range", "int8"):
        path = os.path.join(exported, "tflite", f"model_{variant}.tflite")
        accuracy = np.mean(TFLiteRunner(path).predict_encoded(images).argmax(1) == labels)
        assert accuracy >= 0.9, variant
    int8 = TFLiteRunner(os.path.join(exported, "tflite", "model_int8.tflite"))
    assert int8.input["dtype"] == np.uint8 and int8.output["dtype"] == np.uint8

    info = json.load(open(os.path.join(exported, "model_info.json")))
    assert info["image_size"] == [32, 32] and info["labels"] == ["cat", "dog", "fish"]
    assert {k: ExportedModel(exported).format_entries()["tflite_int8"][k] for k in ("input", "output")} == {
        "input": "uint8",
        "output": "uint8",
    }
    assert open(os.path.join(exported, "labels.txt")).read().split() == ["cat", "dog", "fish"]
    report = json.load(open(os.path.join(exported, "parity.json")))
    assert report["passed"] and set(report["max_abs_diff"]) == {"saved_model", "tflite_float32", "onnx"}
    assert max(report["max_abs_diff"].values()) <= 1e-4


def test_mixed_precision_model_is_rebuilt_in_float32_and_converts():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = export_models.tiny_cnn(3, seed=1)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.layers[2].compute_dtype == "float16"
    rebuilt = float32_rebuild(model)
    assert all(layer.compute_dtype == "float32" for layer in rebuilt.layers)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        rebuilt.predict(pixels, verbose=0), model.predict(pixels, verbose=0).astype(np.float32), atol=2e-3
    )
    interpreter = tf.lite.Interpreter(
        model_content=tflite.convert(tflite.frozen_function(rebuilt, (32, 32)), "float32")
    )
    interpreter.resize_tensor_input(0, [4, 32, 32, 3])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, rebuilt.predict(pixels, verbose=0), atol=1e-5)


def test_parity_mismatch_fails_loudly():
    reference = np.array([[0.6, 0.4], [0.1, 0.9]], np.float32)
    close = reference + 1e-6
    assert parity.check(reference, {"saved_model": close}, 1e-4, ["a", "b"])["passed"]
    broken = reference[:, ::-1]
    with pytest.raises(parity.ParityError, match="tflite_float32 differs from Keras by 0.8 .*on b"):
        parity.check(reference, {"saved_model": close, "tflite_float32": broken}, 1e-4, ["a", "b"])


def test_incomplete_train_dir_is_a_data_error_and_writes_nothing(tmp_path, tmp_path_factory):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "labels.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="missing model.keras, model_info.json"):
        components.export.run(
            components.export.ExportConfig(),
            str(tmp_path / "train"),
            export_models.tiny_ingest(tmp_path_factory),
            str(tmp_path / "export"),
        )
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize(
    "bad", [dict(top_k=0), dict(formats=("tflite_int4",)), dict(int8_io="int16"), dict(parity_tolerance=0.0)]
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(UsageError, match="export."):
        components.export.ExportConfig(**bad).validate()
