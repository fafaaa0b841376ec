"""The hostile-traffic catalogue: requests a hostile or broken client sends to `pipeline.serve`, over
REST and gRPC, each with the status it must get, and the server answering a valid request after
every one. One server (with --port for gRPC and a small --max_decoding_bytes) serves them all."""

import dataclasses
import json
import os
import socket
import threading
import urllib.parse

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from schemas.artifacts import Examples
from schemas.split_reader import sample_split
from tests import export_models, hostile_images
from tests.serve_helpers import NAME, Server, b64, push

_BUDGET = 40 * 2**20  # --max_decoding_bytes: a 2,000 x 2,000 image (64 MB decoded) is over it alone
_LIMIT = "over the model limit of 12500000 (export.max_image_pixels)"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    export = export_models.tiny_export(tmp_path_factory, variants=("float32",))
    ingest = export_models.tiny_ingest(tmp_path_factory)
    _, encoded, _ = sample_split(Examples(ingest), "test", 3, 3)
    tmp = tmp_path_factory.mktemp("hostile")
    push(export, tmp / "serving", tmp, "v1")
    server = Server(
        tmp / "serving" / NAME,
        "--port=0",
        f"--max_decoding_bytes={_BUDGET}",
        "--max_instances_per_request=64",
        "--max_request_bytes=4000000",
    )
    channel = grpc.insecure_channel(server.grpc_target)
    yield server, channel, list(encoded)
    channel.close()
    if server.proc.poll() is None:
        assert server.stop() == 143


def _example(image: bytes | None) -> bytes:
    feature = {} if image is None else {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _raw(server, head: bytes, body: bytes = b"", close_after: bool = False) -> bytes:
    """Send a raw HTTP request; what the server answered (b"" if it closed without answering)."""
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:
        s.sendall(head + body)
        if close_after:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and not close_after:
                break
        return b"".join(chunks)


def _post_head(server, length: int) -> bytes:
    url = urllib.parse.urlsplit(server.url + ":predict")
    return (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@dataclasses.dataclass
class Rest:
    """A REST request: a JSON body (or raw bytes), its path, and the status and message it must get."""

    name: str
    body: object
    status: int
    message: str = ""
    path: str = ":predict"
    method: str = "POST"


_BOMBS = {
    "png_30000": hostile_images.png_bomb(30000, 30000),
    "png_12000": hostile_images.png_bomb(12000, 12000),
    "jpeg_65000": hostile_images.jpeg_bomb(),
    "gif_screen_30000": hostile_images.gif_bomb(),
    "bmp_30000": hostile_images.bmp_bomb(),
    "webp_16000": hostile_images.webp_bomb(),
}
_REST = [
    *[Rest(f"bomb_{name}", {"instances": [b64(data)]}, 400, _LIMIT) for name, data in _BOMBS.items()],
    Rest(
        "bomb_second_of_two",
        {"instances": [b64(hostile_images.encoded("PNG")), b64(_BOMBS["png_30000"])]},
        400,
        "image 1: PNG of 30000 x 30000 pixels decodes to 900000000 pixels, " + _LIMIT,
    ),
    Rest(
        "bomb_in_tf_example",
        {"signature_name": "serve_tf_examples", "instances": [b64(_example(_BOMBS["png_12000"]))]},
        400,
        _LIMIT,
    ),
    Rest(
        "gif_150_frames",
        {"instances": [b64(hostile_images.animation("GIF", 150))]},
        400,
        "has over 100 frames, the model limit (export.max_image_frames)",
    ),
    Rest("webp_150_frames", {"instances": [b64(hostile_images.animation("WEBP", 150))]}, 400, "has over 100 frames"),
    Rest(
        "over_the_decoding_budget",
        {"instances": [b64(hostile_images.png_bomb(2000, 2000))]},
        400,
        "--max_decoding_bytes",
    ),
    Rest("deep_json_100000", b"[" * 100000 + b"]" * 100000, 400, "nested too deeply"),
    Rest(
        "deep_json_in_instances", {"instances": json.loads("[" * 500 + "]" * 500)}, 400, "nested deeper than its rank"
    ),
    Rest(
        "deep_json_pixels",
        {"signature_name": "serve_images", "inputs": json.loads("[" * 50 + "1" + "]" * 50)},
        400,
        "nested deeper than its rank",
    ),
    Rest("too_many_instances", {"instances": [b64(b"x")] * 65}, 400, "--max_instances_per_request"),
    Rest(
        "not_an_image", {"instances": [b64(b"not an image at all")]}, 400, "image 0: not a JPEG, PNG, GIF, BMP or WebP"
    ),
    Rest("empty_image", {"instances": [b64(b"")]}, 400, "image 0: not a JPEG"),
    Rest("truncated_png", {"instances": [b64(hostile_images.encoded("PNG")[:60])]}, 400, "image 0: "),
    Rest("corrupt_third_jpeg", "corrupt_third", 400, "image 2: "),
    Rest("jpeg_xl_refused", {"instances": [b64(b"\xff\x0a" + b"\0" * 40)]}, 400, "not a JPEG, PNG, GIF, BMP or WebP"),
    Rest("plain_string_not_b64", {"instances": ["héllo"]}, 400, "image 0: not a JPEG"),
    Rest("wrong_dtype_number_for_string", {"instances": [1.5]}, 400, "expected a string"),
    Rest(
        "wrong_dtype_string_for_pixels",
        {"signature_name": "serve_images", "inputs": [[[["a", "b", "c"]]]]},
        400,
        "expected a number",
    ),
    Rest("pixels_out_of_range", {"signature_name": "serve_images", "inputs": [[[[300, 1, 1]]]]}, 400, "out of range"),
    Rest("pixels_wrong_rank", {"signature_name": "serve_images", "inputs": [[1, 2, 3]]}, 400, "shape"),
    Rest("pixels_ragged", {"signature_name": "serve_images", "inputs": [[[[1, 2, 3]], [[1, 2]]]]}, 400, ""),
    Rest("pixels_four_channels", {"signature_name": "serve_images", "inputs": [[[[1, 2, 3, 4]]]]}, 400, "shape"),
    Rest("invalid_utf8_body", b'{"instances": ["\xff\xfe"]}', 400, "JSON Parse error"),
    Rest("truncated_json", b'{"instances": [{"b64": "abc', 400, "JSON Parse error"),
    Rest("body_is_an_array", [1, 2], 400, "JSON object"),
    Rest("body_is_a_string", "hello", 400, "JSON object"),
    Rest("instances_null", {"instances": None}, 400, "non-empty"),
    Rest("instances_and_inputs", {"instances": [1], "inputs": [1]}, 400, "Only one of"),
    Rest("bad_base64", {"instances": [{"b64": "!!!"}]}, 400, "base64"),
    Rest(
        "unknown_signature", {"signature_name": "evil", "instances": [b64(b"x")]}, 400, 'Serving signature name: "evil"'
    ),
    Rest(
        "tf_example_not_an_example", {"signature_name": "serve_tf_examples", "instances": [b64(b"\xff" * 30)]}, 400, ""
    ),
    Rest(
        "tf_example_without_image",
        {"signature_name": "serve_tf_examples", "instances": [b64(_example(None))]},
        400,
        "image",
    ),
    Rest("body_over_the_limit", {"instances": [b64(b"x" * 3_500_000)]}, 413, "--max_request_bytes"),
    Rest("unknown_model", {"instances": [b64(b"x")]}, 404, "Servable not found", path="/../other:predict"),
    Rest("unknown_version", {"instances": [b64(b"x")]}, 404, "Specific(classifier, 9)", path="/versions/9:predict"),
    Rest(
        "version_not_a_number", {"instances": [b64(b"x")]}, 400, "Failed to convert version", path="/versions/x:predict"
    ),
    Rest("classify_on_a_predict_signature", {"instances": [b64(b"x")]}, 400, "method_name", path=":classify"),
    Rest("get_on_predict", None, 404, "predict is a POST", method="GET"),
]


def _send(server, case: Rest, images) -> requests.Response:
    url = server.url + case.path if not case.path.startswith("/..") else server.url.rsplit("/", 1)[0] + case.path[3:]
    if case.method == "GET":
        return requests.get(url, timeout=60)
    body = case.body
    if body == "corrupt_third":
        body = {"instances": [b64(images[0]), b64(images[1]), b64(images[2][: len(images[2]) // 2] + b"\0" * 64)]}
    if isinstance(body, bytes):
        return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    return requests.post(url, json=body, timeout=60)


def _still_answers(server, images) -> None:
    answer = server.predict({"instances": [b64(images[0])]})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("case", _REST, ids=[c.name for c in _REST])
def test_rest(served, case):
    server, _, images = served
    answer = _send(server, case, images)
    assert answer.status_code == case.status, answer.text[:500]
    error = answer.json()["error"]
    assert case.message in error and "Graph execution error" not in error and "Traceback" not in error, error
    assert "\n" not in error.strip(), error
    _still_answers(server, images)


def _predict_request(signature="serving_default", model=NAME, version=None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


_GRPC = {
    "bomb_png_30000": (
        lambda: _predict_request(images=[_BOMBS["png_30000"]]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "image 0: PNG of 30000 x 30000 pixels decodes to 900000000 pixels, " + _LIMIT,
    ),
    "bomb_in_tf_example": (
        lambda: _predict_request("serve_tf_examples", examples=[_example(_BOMBS["gif_screen_30000"])]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "image 0: GIF of 30000 x 30000 pixels",
    ),
    "gif_150_frames": (
        lambda: _predict_request(images=[hostile_images.animation("GIF", 150)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "has over 100 frames",
    ),
    "not_an_image": (
        lambda: _predict_request(images=[b"junk"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "image 0: not a JPEG",
    ),
    "wrong_dtype": (
        lambda: _predict_request(images=np.zeros(2, np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "dtype float32 does not match the signature's string",
    ),
    "wrong_pixel_dtype": (
        lambda: _predict_request("serve_images", images=np.zeros((1, 8, 8, 3), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not match the signature's uint8",
    ),
    "wrong_shape": (
        lambda: _predict_request("serve_images", images=np.zeros((1, 8, 8, 4), np.uint8)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "shape [1, 8, 8, 4]",
    ),
    "scalar_input": (lambda: _predict_request(images=b"x"), grpc.StatusCode.INVALID_ARGUMENT, "shape []"),
    "wrong_input_name": (
        lambda: _predict_request(pictures=[b"x"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "not the signature's",
    ),
    "unknown_signature": (
        lambda: _predict_request("evil", images=[b"x"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        'Serving signature name: "evil"',
    ),
    "unknown_model": (
        lambda: _predict_request(model="other", images=[b"x"]),
        grpc.StatusCode.NOT_FOUND,
        "Latest(other)",
    ),
    "unknown_version": (
        lambda: _predict_request(version=9, images=[b"x"]),
        grpc.StatusCode.NOT_FOUND,
        "Specific(classifier, 9)",
    ),
    "too_many_instances": (
        lambda: _predict_request(images=[b"x"] * 65),
        grpc.StatusCode.INVALID_ARGUMENT,
        "--max_instances_per_request",
    ),
    "message_over_the_limit": (
        lambda: _predict_request(images=[b"x" * 4_100_000]),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(_GRPC))
def test_grpc(served, name):
    server, channel, images = served
    build, code, message = _GRPC[name]
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(build(), timeout=60)
    assert raised.value.code() == code and message in raised.value.details(), raised.value.details()
    answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        _predict_request(images=[images[0]]), timeout=60
    )
    assert answer.outputs["probabilities"].tensor_shape.dim[0].size == 1
    _still_answers(server, images)


def test_grpc_metadata_and_status(served):
    _, channel, _ = served
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = NAME
    metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "serve_images", "serve_tf_examples"}
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = NAME
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]


def test_slow_client_sending_headers_a_byte_at_a_time(served):
    """While one client trickles its request a byte at a time, others are answered."""
    server, _, images = served
    body = json.dumps({"instances": [b64(images[1])]}).encode()
    request = _post_head(server, len(body)) + body
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as slow:
        for i in range(0, 40):
            slow.sendall(request[i : i + 1])
            if i % 8 == 0:
                _still_answers(server, images)
        slow.sendall(request[40:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += slow.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_clients_that_disconnect_mid_request(served):
    server, _, images = served
    body = json.dumps({"instances": [b64(images[1])] * 8}).encode()
    for sent in (0, 10, len(body) // 2, len(body) - 1):  # headers only, then ever more of the body
        _raw(server, _post_head(server, len(body)), body[:sent], close_after=True)
        _still_answers(server, images)
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as s:  # mid-headers
        s.sendall(_post_head(server, len(body))[:20])
    _still_answers(server, images)
    metrics = requests.get(server.url.split("/v1/")[0] + "/monitoring/prometheus/metrics", timeout=30).text
    assert 'status="CANCELLED"' in metrics


def test_grpc_and_rest_answer_the_same(served):
    """The same images by both APIs, both signatures: the same probabilities and labels, and the
    SavedModel's own (TF Serving's client code shape: PredictionServiceStub(channel).Predict)."""
    server, channel, images = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    over_grpc = stub.Predict(_predict_request(images=images), timeout=60)
    over_rest = server.predict({"instances": [b64(b) for b in images]}).json()["predictions"]
    probabilities = tf.make_ndarray(over_grpc.outputs["probabilities"])
    np.testing.assert_allclose(probabilities, [p["probabilities"] for p in over_rest], atol=1e-6)
    assert [x.decode() for x in tf.make_ndarray(over_grpc.outputs["label"])] == [p["label"] for p in over_rest]
    assert over_grpc.model_spec.version.value == 1 and over_grpc.model_spec.signature_name == "serving_default"
    pixels = np.random.default_rng(0).integers(0, 256, (2, 40, 24, 3), dtype=np.uint8)
    grpc_pixels = stub.Predict(_predict_request("serve_images", images=pixels), timeout=60)
    rest_pixels = server.predict({"signature_name": "serve_images", "inputs": pixels.tolist()}).json()["outputs"]
    np.testing.assert_allclose(
        tf.make_ndarray(grpc_pixels.outputs["probabilities"]), rest_pixels["probabilities"], atol=1e-6
    )
    request = _predict_request(images=images[:1])
    request.output_filter.append("label")  # TF Serving's: only the outputs asked for
    assert set(stub.Predict(request, timeout=60).outputs) == {"label"}


def test_a_broken_version_pushed_mid_traffic_is_not_served(tmp_path, tmp_path_factory):
    """Clients keep sending while a version whose SavedModel is garbage appears: every request is
    answered 200 by version 1, and the status call reports version 2 as END with its error."""
    export = export_models.tiny_export(tmp_path_factory, variants=("float32",))
    _, images, _ = sample_split(Examples(export_models.tiny_ingest(tmp_path_factory)), "test", 2, 3)
    push(export, tmp_path / "serving", tmp_path, "v1")
    server = Server(tmp_path / "serving" / NAME)
    statuses, stop = [], threading.Event()

    def client():
        session = requests.Session()
        while not stop.is_set():
            answer = session.post(server.url + ":predict", json={"instances": [b64(images[0])]}, timeout=60)
            statuses.append(
                (answer.status_code, requests.get(server.url + "/metadata", timeout=60).json()["model_spec"]["version"])
            )

    clients = [threading.Thread(target=client) for _ in range(3)]
    try:
        for c in clients:
            c.start()
        broken = tmp_path / "staging"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"\x08garbage")
        os.rename(broken, tmp_path / "serving" / NAME / "2")
        server.wait_for(lambda s: s[0]["version"] == "2" and s[0]["state"] == "END", "version 2 to fail")
        answered = len(statuses)
        server.wait_for(lambda s: len(statuses) > answered + 6, "more answers after the failed load")
    finally:
        stop.set()
        for c in clients:
            c.join()
        assert server.stop() == 143
    assert statuses and all(s == (200, "1") for s in statuses), statuses
    assert any("version 2 failed to load" in line for line in server.log)


def test_metrics_page_parses_and_counts_by_api_and_status(served):
    """TF Serving's metrics path, read with prometheus-client's own parser: a REST 200, a gRPC error and
    a REST 400 sent here are each counted under their entrypoint and status."""
    from prometheus_client.parser import text_string_to_metric_families

    server, channel, images = served
    url = server.url.split("/v1/")[0] + "/monitoring/prometheus/metrics"

    def counts():
        families = {f.name: f for f in text_string_to_metric_families(requests.get(url, timeout=30).text)}
        found = {}
        for sample in families[":tensorflow:serving:request_count"].samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["entrypoint"], sample.labels["status"])
                found[key] = found.get(key, 0) + sample.value
        return families, found

    _, before = counts()
    _still_answers(server, images)
    assert server.predict({"instances": [b64(b"junk")]}).status_code == 400
    with pytest.raises(grpc.RpcError):
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            _predict_request(images=[b"junk"]), timeout=60
        )
    families, after = counts()
    for key in (("REST", "OK"), ("REST", "INVALID_ARGUMENT"), ("GRPC", "INVALID_ARGUMENT")):
        assert after.get(key, 0) == before.get(key, 0) + 1, (key, before, after)
    assert families[":tensorflow:serving:model_version"].samples[0].value == 1
    loads = {
        s.labels["status"]: s.value
        for s in families[":tensorflow:serving:model_load_count"].samples
        if s.name.endswith("_total")
    }
    assert loads == {"OK": 1}
    batches = {s.name: s.value for s in families[":tensorflow:serving:batching_session:batch_size"].samples}
    assert batches[":tensorflow:serving:batching_session:batch_size_count"] >= 1
    assert families[":transferline:serving:decoding_bytes_in_use"].samples[0].value == 0  # nothing in flight
