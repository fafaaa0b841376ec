"""The exported model on real sign-language photos: serving_default agrees with the Keras model."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.formats.tflite import TFLiteRunner
from components.common.image_ops import preprocess
from schemas.artifacts import Examples, ExportedModel
from schemas.split_reader import read_split
from tests import export_models

pytestmark = pytest.mark.slow  # seconds to minutes per test: the full tier only (pytest.ini)


def test_serving_default_top1_equals_keras_on_raw_jpeg_bytes(tmp_path_factory, sign_digits_dir, shared_weights_dir):
    art = export_models.sign_digits_artifacts(tmp_path_factory, sign_digits_dir, shared_weights_dir)
    _, jpegs, labels = read_split(Examples(art["ingest"]), "test")
    assert all(j[:2] == b"\xff\xd8" for j in jpegs)  # the original JPEG files' bytes
    model = keras.models.load_model(os.path.join(art["train"], "model.keras"))
    keras_probs = model.predict(preprocess(jpegs, (96, 96)), verbose=0)

    served = tf.saved_model.load(os.path.join(art["export"], "saved_model")).signatures["serving_default"]
    out = served(images=tf.constant(jpegs))
    assert np.array_equal(out["probabilities"].numpy().argmax(1), keras_probs.argmax(1))
    names = ExportedModel(art["export"]).labels()
    assert [c.decode() for c in out["classes"].numpy()[:, 0]] == [names[i] for i in keras_probs.argmax(1)]
    assert np.mean(keras_probs.argmax(1) == labels) > 0.25  # well above chance (0.1) on 10 classes

    int8 = TFLiteRunner(os.path.join(art["export"], "tflite", "model_int8.tflite")).predict_encoded(jpegs)
    assert np.mean(int8.argmax(1) == keras_probs.argmax(1)) >= 0.8
