"""TF Serving warm-up requests: written into every export's SavedModel, parsed by
tensorflow-serving-api's PredictionLog, answerable by the signature they name, and pushed."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import components.export
import components.push
from components.common import warmup_requests as warmup
from components.common.errors import UsageError
from schemas.artifacts import ExportedModel, ServingVersion
from tests import export_models


def test_every_request_replays_through_the_signature_it_names(tmp_path_factory):
    export = ExportedModel(export_models.tiny_export(tmp_path_factory))
    file_path = warmup.path(export.saved_model_dir())
    assert os.path.exists(file_path)
    raw = [r.numpy() for r in tf.data.TFRecordDataset(file_path)]
    assert len(raw) == 10, "export.warmup_examples"
    log = prediction_log_pb2.PredictionLog.FromString(raw[0])
    assert log.WhichOneof("log_type") == "predict_log"
    saved = tf.saved_model.load(export.saved_model_dir())
    for request in warmup.read(file_path):
        assert request.model_spec.signature_name == "serving_default"
        images = tf.make_ndarray(request.inputs["images"])
        assert images.dtype == object and images.shape == (1,) and images[0][:2] in (b"\xff\xd8", b"\x89P")
        out = saved.signatures[request.model_spec.signature_name](images=tf.constant(images))
        assert out["probabilities"].shape == (1, 3)
        np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)


def test_a_pushed_version_carries_the_warmup_file(tmp_path_factory, tmp_path):
    export_dir = export_models.tiny_export(tmp_path_factory)
    blessing = export_models.blessing_dir(tmp_path / "evaluate", blessed=True)
    result = components.push.run(components.push.PushConfig(), export_dir, blessing, str(tmp_path / "serving"))
    assert result.pushed
    version = ServingVersion(result.output_dir)
    pushed = version.path(ServingVersion.WARMUP)
    assert os.path.exists(pushed)
    assert len(warmup.read(pushed)) == len(warmup.read(warmup.path(ExportedModel(export_dir).saved_model_dir())))


@pytest.mark.parametrize("bad", [-1, 1001, 2.5])
def test_bad_warmup_count_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="export.warmup_examples"):
        components.export.ExportConfig(warmup_examples=bad).validate()
