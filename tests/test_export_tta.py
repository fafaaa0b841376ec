"""export.tta: flip test-time augmentation inside every exported model, and when `auto` turns it on."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import components.export
from components.common.errors import UsageError
from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from components.export import calibration, tta
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split
from tests import export_models


@pytest.mark.parametrize(
    "mode, history, expected",
    [
        ("auto", {"config": {"augment": {"flip": True}, "stages": None}}, "flip"),  # default stages augment
        ("auto", {"config": {"augment": {"flip": True}, "stages": [{"augment": False}, {"augment": True}]}}, "flip"),
        ("auto", {"config": {"augment": {"flip": True}, "stages": [{"augment": False}]}}, "none"),  # never flipped
        ("auto", {"config": {"augment": {"flip": False}, "stages": None}}, "none"),
        ("auto", None, "none"),  # a model trained elsewhere: nothing says mirror images mean the same
        ("flip", None, "flip"),
        ("none", {"config": {"augment": {"flip": True}}}, "none"),
    ],
)
def test_auto_flips_only_when_the_training_flipped(mode, history, expected):
    assert tta.resolve(mode, history) == expected


def test_an_unknown_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="export.tta"):
        components.export.ExportConfig(tta="rotate").validate()


def _left_right_model() -> keras.Model:
    """Untrained, in the trainer's head layout, and with a dense layer over positions: its output
    changes visibly when the image is mirrored (global pooling alone would nearly hide the mirror)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x)
    x = keras.layers.Dense(16, activation="relu", name="head_pool")(keras.layers.Flatten()(x))
    logits = keras.layers.Dense(3, name="head_dense")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(logits))


@pytest.fixture(scope="module")
def flipped_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("tta")
    ingest = export_models.tiny_ingest(tmp_path_factory)
    train = export_models.write_train_dir(
        root / "train", _left_right_model(), Examples(ingest).labels(), (32, 32), "tiny_dense"
    )
    config = components.export.ExportConfig(
        tta="flip",
        formats=("tflite_float32", "tflite_int8"),
        representative_examples=24,
        abstain_precision=0.9,
        abstain_far_from_training=True,
    )
    components.export.run(config, train, ingest, str(root / "export"))
    return root, ingest


def test_every_exported_model_averages_the_image_and_its_mirror(flipped_export):
    root, ingest = flipped_export
    export = ExportedModel(str(root / "export"))
    info = export.info()
    assert info["tta"] == "flip"
    assert json.loads((root / "export" / "parity.json").read_text())["passed"]
    _, images, _ = read_split(Examples(ingest), "test")
    pixels = preprocess(images, (32, 32))
    model = keras.models.load_model(os.path.join(root, "train", "model.keras"))
    calibration.fold_temperature(model, info["calibration"]["temperature"])
    expected = (model.predict(pixels, verbose=0) + model.predict(pixels[:, :, ::-1], verbose=0)) / 2
    single = model.predict(pixels, verbose=0)
    assert np.abs(expected - single).max() > 0.02, "the mirror changes this model's output: the test can tell"

    saved = tf.saved_model.load(export.saved_model_dir())
    as_uint8 = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    served = saved.signatures["serve_images"](images=tf.constant(as_uint8))["probabilities"].numpy()
    mirror = saved.signatures["serve_images"](images=tf.constant(as_uint8[:, :, ::-1].copy()))["probabilities"].numpy()
    np.testing.assert_allclose(served, mirror, atol=1e-5)  # symmetric by construction
    by_bytes = saved.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(by_bytes, expected, atol=1e-5)
    lite = TFLiteRunner(export.formats()["tflite_float32"]).predict_pixels(pixels)
    np.testing.assert_allclose(lite, expected, atol=1e-4)
    int8 = TFLiteRunner(export.formats()["tflite_int8"]).predict_pixels(pixels)
    np.testing.assert_allclose(int8, expected, atol=0.05)  # quantised, converted from the same averaged graph


def test_the_abstention_threshold_is_fitted_on_the_averaged_probabilities(flipped_export, tmp_path):
    root, ingest = flipped_export
    info = ExportedModel(str(root / "export")).info()
    again = components.export.run(
        components.export.ExportConfig(
            tta="none",
            formats=("tflite_float32",),
            representative_examples=24,
            abstain_precision=0.9,
            abstain_far_from_training=True,
        ),
        str(root / "train"),
        ingest,
        str(tmp_path / "export"),
    )
    plain = ExportedModel(again.output_dir).info()
    assert plain["tta"] == "none"
    assert plain["calibration"]["temperature"] == info["calibration"]["temperature"], "fitted on single views"
    assert (plain["abstention"]["val_coverage"], plain["abstention"]["threshold"]) != (
        info["abstention"]["val_coverage"],
        info["abstention"]["threshold"],
    )
