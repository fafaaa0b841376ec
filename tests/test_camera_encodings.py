"""What the camera wrote is what the model sees: every serving path against the ingest's record.

Real sign-language photos in the encodings cameras and tools write (tests/camera_encodings.py: all
eight EXIF orientations, transparency in every form, CMYK and YCCK JPEG, 16-bit PNG, greyscale,
progressive, ICC-tagged and MPO JPEGs) are ingested by the real ingest, then sent as the files they
are to `serving_default`, to `pipeline.serve` over REST and gRPC, to `pipeline.predict` with
the SavedModel, TFLite and ONNX, and to `pipeline.pixels.model_input` (the documented clients').
The model is a pixel probe: its "probabilities" are its input
pixels / 255, so each path's answer is the pixels the model received, compared with what the
trainer decodes from the record (`decode_and_resize`). The ingest did not downscale these photos,
so the bound is the issue's: at most 2 levels of 0-255 after the resize.
"""

import io
import json
import os
import pathlib

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import components.export
import components.ingest
from components.common.image_ops import decode_and_resize
from components.common.normalisation import served_format
from pipeline import predict
from pipeline.pixels import model_input
from schemas import feature_spec
from schemas.artifacts import Examples
from tests import export_models, serve_helpers
from tests.camera_encodings import catalogue

SIGN_DIGITS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits"
pytestmark = pytest.mark.skipif(not SIGN_DIGITS.is_dir(), reason=f"needs the real photos in {SIGN_DIGITS}")

SIZE = (32, 32)
TOLERANCE = 2.0
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


def _photos(count: int) -> list:
    """`count` different real photos (a different one per encoding, so none is a duplicate of another)."""
    files = sorted(p for d in sorted(SIGN_DIGITS.iterdir()) if d.is_dir() for p in sorted(d.iterdir()))
    return [Image.open(files[i * 7]) for i in range(count)]


def _probe_model() -> keras.Model:
    """A "classifier" whose probabilities are its input pixels / 255, in (row, column, channel) order."""
    inputs = keras.Input((*SIZE, 3))
    flat = keras.layers.Reshape((SIZE[0] * SIZE[1] * 3,))(inputs)
    return keras.Model(inputs, keras.layers.Rescaling(1 / 255.0, name="probabilities")(flat))


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """(the catalogue's files by name, the trainer's pixels from each one's record, the export dir)."""
    tmp = tmp_path_factory.mktemp("camera")
    names = [name for name, _, _ in catalogue(_photos(1)[0])]
    files = {}
    for i, photo in enumerate(_photos(len(names))):
        name, data, _ = catalogue(photo)[i]
        folder = tmp / "photos" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.{_EXTENSIONS[Image.open(io.BytesIO(data)).format]}"
        path.write_bytes(data)
        files[name] = path
    ingest_dir = str(tmp / "ingest")
    result = components.ingest.run(components.ingest.IngestConfig(data_dir=str(tmp / "photos")), ingest_dir)
    assert not result.rejected, result.rejected  # every encoding is accepted
    examples, expected = Examples(ingest_dir), {}
    for split in [s for s in Examples.SPLITS if examples.shards(s)]:
        for record in tf.data.TFRecordDataset(examples.shards(split)):
            parsed = tf.io.parse_single_example(record, feature_spec("image", "filename"))
            name = pathlib.Path(parsed["filename"].numpy().decode()).stem
            expected[name] = decode_and_resize(parsed["image"], SIZE).numpy()
    assert set(expected) == set(files)
    labels = [f"p{i:04d}" for i in range(SIZE[0] * SIZE[1] * 3)]
    train_dir = export_models.write_train_dir(tmp / "train", _probe_model(), labels, SIZE, "pixel_probe")
    config = components.export.ExportConfig(
        formats=("saved_model", "tflite_float32", "onnx"),
        calibrate=False,
        abstain_far_from_training=False,
        tta="none",
        warmup_examples=0,
        parity_examples=2,
        representative_examples=2,
    )
    export_dir = str(tmp / "export")
    components.export.run(config, train_dir, ingest_dir, export_dir)
    return files, expected, export_dir


def _served(files: dict) -> dict:
    """The catalogue's files in a format the SavedModel decodes (TIFF is not: the CLIs convert it)."""
    return {name: path for name, path in files.items() if served_format(path.read_bytes())}


def _check(received: dict, expected: dict, path: str) -> None:
    """Every encoding's received pixels within TOLERANCE of its record's; all failures named at once."""
    assert received, path
    worst = {name: float(np.abs(received[name] - expected[name]).max()) for name in received}
    bad = {name: round(value, 2) for name, value in worst.items() if value > TOLERANCE}
    assert not bad, f"{path}: pixels differ from the ingest's record by more than {TOLERANCE}: {bad}"


def _pixels(probabilities) -> np.ndarray:
    return np.asarray(probabilities, np.float32).reshape(*SIZE, 3) * 255.0


def test_serving_default_sees_the_records_pixels(probe):
    files, expected, export_dir = probe
    signature = tf.saved_model.load(os.path.join(export_dir, "saved_model")).signatures["serving_default"]
    received = {
        name: _pixels(signature(images=tf.constant([path.read_bytes()]))["probabilities"][0])
        for name, path in _served(files).items()
    }
    _check(received, expected, "serving_default")
    for name in set(files) - set(received):  # TIFF: refused, naming the formats it takes
        with pytest.raises(tf.errors.InvalidArgumentError, match="not a JPEG, PNG, GIF, BMP or WebP image"):
            signature(images=tf.constant([files[name].read_bytes()]))


@pytest.mark.parametrize("model_format", ["saved_model", "tflite_float32", "onnx"])
def test_pipeline_predict_sees_the_records_pixels(probe, model_format, capsys):
    files, expected, export_dir = probe
    k = SIZE[0] * SIZE[1] * 3
    code = predict.main([export_dir, *map(str, files.values()), "--model-format", model_format, "--top-k", str(k)])
    assert code == 0, capsys.readouterr().err
    received = {}
    assert any(path.suffix == ".tif" for path in files.values())  # converted by the ingest's normaliser
    for line in capsys.readouterr().out.splitlines():
        row = json.loads(line)
        flat = np.zeros(k, np.float32)
        flat[[int(label[1:]) for label in row["labels"]]] = row["scores"]
        received[pathlib.Path(row["path"]).stem] = _pixels(flat)
    _check(received, expected, f"pipeline.predict --model-format {model_format}")


def test_the_python_clients_function_sees_the_records_pixels(probe):
    """`pipeline.pixels.model_input`, which the TFLite and ONNX clients of docs/export.md call."""
    files, expected, _ = probe
    names = list(files)
    received = model_input([str(files[name]) for name in names], SIZE)
    _check(dict(zip(names, received)), expected, "pipeline.pixels.model_input")


def test_pipeline_serve_rest_and_grpc_see_the_records_pixels(probe, tmp_path, monkeypatch):
    files, expected, export_dir = probe
    serving_dir = tmp_path / "serving"
    # The push's reload check wants probabilities that sum to 1; the probe's are pixels.
    monkeypatch.setattr("components.push.pusher.reload_check", lambda version_dir, model_info: None)
    serve_helpers.push(export_dir, serving_dir, tmp_path, "probe")
    server = serve_helpers.Server(serving_dir / serve_helpers.NAME, "--port=0")
    try:
        names = list(_served(files))
        images = [files[name].read_bytes() for name in names]
        over_rest = server.predict({"instances": [serve_helpers.b64(b) for b in images]}).json()["predictions"]
        _check({n: _pixels(p["probabilities"]) for n, p in zip(names, over_rest)}, expected, "REST")
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = serve_helpers.NAME, "serving_default"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
        with grpc.insecure_channel(server.grpc_target) as channel:
            answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=120)
        probabilities = tf.make_ndarray(answer.outputs["probabilities"])
        _check({n: _pixels(p) for n, p in zip(names, probabilities)}, expected, "gRPC")
    finally:
        assert server.stop() == 143  # the documented exit code of a SIGTERM stop


def test_the_catalogue_is_upright_and_on_white_where_its_truth_is_known():
    """The ingest's own pixels against what a person sees (the catalogue's upright image): orientation
    and compositing are right, not merely the same on both sides. JPEG re-encoding bounds the error."""
    from components.ingest.decode import decode_and_normalise

    for name, data, upright in catalogue(_photos(1)[0]):
        if upright is None:
            continue
        stored = np.asarray(Image.open(io.BytesIO(decode_and_normalise(data).data)).convert("RGB"), np.float32)
        assert stored.shape == upright.shape, name
        assert np.abs(stored - upright).mean() < 3.0, name
