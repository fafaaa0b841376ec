"""`python -m pipeline.serve` over localhost with a real HTTP client (`requests`, as TF Serving's
REST tutorial uses): status, metadata, predict in the row and columnar formats, TF Serving's error
shape, bounds, hot reload of a pushed version, a version that fails to load or warm up not served,
and a clean shutdown."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tensorflow as tf

from schemas.artifacts import Examples, ServingVersion
from schemas.split_reader import sample_split
from tests import export_models
from tests.serve_helpers import NAME, Server
from tests.serve_helpers import b64 as _b64
from tests.serve_helpers import push as _push


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    trained = export_models.tiny_export(tmp_path_factory, variants=("float32",))
    untrained = export_models.tiny_export(tmp_path_factory, epochs=0, variants=("float32",))
    ingest = export_models.tiny_ingest(tmp_path_factory)
    _, encoded, labels = sample_split(Examples(ingest), "test", 6, 3)
    return trained, untrained, list(encoded)


def _serve_v1(exports, tmp_path):
    serving = tmp_path / "serving"
    version = _push(exports[0], serving, tmp_path, "v1")
    server = Server(serving / NAME)
    yield server, version, serving
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(scope="module")
def served(exports, tmp_path_factory):
    """One server for the tests that only read (each start costs seconds of TensorFlow import)."""
    yield from _serve_v1(exports, tmp_path_factory.mktemp("served"))


@pytest.fixture
def served_alone(exports, tmp_path):
    """A server of its own, for a test that pushes versions."""
    yield from _serve_v1(exports, tmp_path)


def _local(version: ServingVersion, signature: str, **inputs) -> dict:
    outputs = tf.saved_model.load(version.saved_model_dir()).signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()}
    )
    return {k: v.numpy() for k, v in outputs.items()}


def test_status_metadata_and_predict_in_both_formats(served, exports):
    server, version, _ = served
    assert server.status() == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    meta = requests.get(server.url + "/metadata", timeout=60).json()
    assert meta["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "serve_images", "serve_tf_examples"}
    assert signatures["serving_default"]["inputs"]["images"]["dtype"] == "DT_STRING"
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"

    images = exports[2]
    expected = _local(version, "serving_default", images=np.array(images, dtype=object))
    row = server.predict({"instances": [_b64(b) for b in images]})
    assert row.status_code == 200, row.text
    predictions = row.json()["predictions"]
    assert len(predictions) == len(images)
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected["probabilities"], atol=1e-5)
    assert [p["label"] for p in predictions] == [s.decode() for s in expected["label"]]
    named = server.predict({"signature_name": "serving_default", "instances": [{"images": _b64(b)} for b in images]})
    assert named.json() == row.json()
    versioned = server.predict({"instances": [_b64(b) for b in images]}, path="/versions/1:predict")
    assert versioned.json() == row.json()

    pixels = np.random.default_rng(0).integers(0, 256, (2, 40, 24, 3), dtype=np.uint8)
    columnar = server.predict({"signature_name": "serve_images", "inputs": {"images": pixels.tolist()}})
    assert columnar.status_code == 200, columnar.text
    outputs = columnar.json()["outputs"]
    local = _local(version, "serve_images", images=pixels)
    np.testing.assert_allclose(outputs["probabilities"], local["probabilities"], atol=1e-5)
    assert outputs["classes"] == [[c.decode() for c in row] for row in local["classes"]]
    bare = server.predict({"signature_name": "serve_images", "inputs": pixels.tolist()})
    assert bare.json() == columnar.json()


@pytest.mark.parametrize(
    "body, path, status, message",
    [
        (b"{not json", ":predict", 400, "JSON Parse error"),
        ({"instances": []}, ":predict", 400, "non-empty"),
        ({"instances": [1], "inputs": [1]}, ":predict", 400, "Only one of"),
        ({"signature_name": "nope", "instances": [{"b64": ""}]}, ":predict", 400, 'Serving signature name: "nope"'),
        ({"instances": [{"b64": "***"}]}, ":predict", 400, "base64"),
        ({"instances": [{"b64": base64.b64encode(b"not an image").decode()}]}, ":predict", 400, ""),
        ({"signature_name": "serve_images", "inputs": [[1, 2]]}, ":predict", 400, "shape"),
        ({"instances": [{"b64": ""}]}, "/versions/7:predict", 404, "Specific(classifier, 7)"),
        ({"instances": [{"b64": ""}]}, ":classify", 400, "Expected classify signature method_name"),
    ],
)
def test_errors_have_tf_servings_shape(served, body, path, status, message):
    server = served[0]
    kw = {"data": body} if isinstance(body, bytes) else {"json": body}
    answer = requests.post(server.url + path, timeout=30, **kw)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and message in answer.json()["error"]


def test_unknown_model_and_version_are_404(served):
    server = served[0]
    base = server.url.rsplit("/", 1)[0]
    for url in (
        base + "/other",
        base + "/other:predict",
        server.url + "/versions/3",
        server.url + "/versions/3/metadata",
    ):
        answer = requests.get(url, timeout=60) if ":" not in url.rsplit("/", 1)[1] else requests.post(url, json={})
        assert answer.status_code == 404 and "error" in answer.json(), (url, answer.text)


def test_a_bad_request_batched_with_good_ones_fails_alone(exports, tmp_path):
    serving = tmp_path / "serving"
    _push(exports[0], serving, tmp_path, "v1")
    server = Server(serving / NAME, "--batch_timeout_micros=300000")  # 0.3 s: the four requests batch
    try:
        bodies = [{"instances": [_b64(exports[2][i])]} for i in range(3)] + [{"instances": [_b64(b"junk")]}]
        answers = [None] * 4
        threads = [
            threading.Thread(target=lambda i=i: answers.__setitem__(i, server.predict(bodies[i]))) for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [a.status_code for a in answers] == [200, 200, 200, 400], [a.text for a in answers]
    finally:
        assert server.stop() == 143


class HeldRequest:
    """A predict request sent on a raw socket up to its last byte and held there until `release()`: once the
    server admits it, it counts against --max_concurrent_requests while the server waits for the rest."""

    def __init__(self, server, body: dict):
        import json
        import socket
        import urllib.parse

        url = urllib.parse.urlsplit(server.url + ":predict")
        self._data = json.dumps(body).encode()
        self._socket = socket.create_connection((url.hostname, url.port), timeout=120)
        self._socket.sendall(
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self._data)}\r\n\r\n".encode()
            + self._data[:-1]
        )

    def answered(self) -> bool:
        """Whether the server has already answered (refused it: the slot was taken when it arrived)."""
        import select

        return bool(select.select([self._socket], [], [], 0)[0])

    def release(self) -> tuple:
        """Send the last byte; (status, body) of the answer."""
        import http.client

        if not self.answered():
            self._socket.sendall(self._data[-1:])
        response = http.client.HTTPResponse(self._socket)
        response.begin()
        try:
            return response.status, response.read().decode()
        finally:
            self._socket.close()


def _hold(server, body, probe, seconds=60) -> tuple:
    """(a held request the server has admitted, the 503 a probe got meanwhile), on a server allowing one
    request in flight. A probe can take the slot just as the held request arrives, which the server then
    refuses: that one is sent again."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held = HeldRequest(server, body)
        while time.monotonic() < deadline and not held.answered():
            answer = server.predict(probe)
            if answer.status_code == 503 and not held.answered():
                return held, answer
        held.release()
    raise AssertionError(f"the server never reported the held request in flight; log:\n{''.join(server.log)}")


def test_request_size_and_concurrency_are_bounded(exports, tmp_path):
    serving = tmp_path / "serving"
    _push(exports[0], serving, tmp_path, "v1")
    server = Server(serving / NAME, "--max_concurrent_requests=1", "--max_request_bytes=65536")
    try:
        big = server.predict({"instances": [_b64(b"x" * 131072)]})
        assert big.status_code == 413 and "--max_request_bytes" in big.json()["error"]
        held, busy = _hold(server, {"instances": [_b64(exports[2][0])]}, {"instances": [_b64(exports[2][1])]})
        assert "--max_concurrent_requests" in busy.json()["error"]
        assert held.release()[0] == 200
        assert server.predict({"instances": [_b64(exports[2][1])]}).status_code == 200  # the slot is free again
    finally:
        assert server.stop() == 143


def test_new_versions_load_without_restart_and_broken_ones_are_not_served(served_alone, exports, tmp_path):
    server, _, serving = served_alone
    images = exports[2]
    before = server.predict({"instances": [_b64(b) for b in images]}).json()
    v2 = _push(exports[1], serving, tmp_path, "v2")
    server.wait_for(lambda s: s[0]["version"] == "2" and s[0]["state"] == "AVAILABLE", "version 2")
    assert requests.get(server.url + "/metadata", timeout=60).json()["model_spec"]["version"] == "2"
    after = server.predict({"instances": [_b64(b) for b in images]}).json()
    expected = _local(v2, "serving_default", images=np.array(images, dtype=object))
    np.testing.assert_allclose([p["probabilities"] for p in after["predictions"]], expected["probabilities"], atol=1e-5)
    assert after != before
    assert {"version": "1", "state": "END", "status": {"error_code": "OK", "error_message": ""}} in server.status()

    # version 3: a copy of 2 whose warm-up request names a signature it lacks: loading replays it, fails
    staging = tmp_path / "v3"
    shutil.copytree(v2.uri, staging)
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "no_such_signature"
    with tf.io.TFRecordWriter(str(staging / ServingVersion.WARMUP)) as writer:
        writer.write(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            ).SerializeToString()
        )
    os.rename(staging, serving / NAME / "3")
    server.wait_for(lambda s: s[0]["version"] == "3" and s[0]["state"] == "END", "version 3 to fail")
    failed = server.status()[0]["status"]
    assert failed["error_code"] == "UNKNOWN" and "no_such_signature" in failed["error_message"]
    # version 4: not a SavedModel at all
    (serving / NAME / "4").mkdir()
    (serving / NAME / "4" / "saved_model.pb").write_bytes(b"garbage")
    server.wait_for(lambda s: s[0]["version"] == "4" and s[0]["state"] == "END", "version 4 to fail")
    assert requests.get(server.url + "/metadata", timeout=60).json()["model_spec"]["version"] == "2"
    assert server.predict({"instances": [_b64(b) for b in images]}).json() == after
    assert requests.get(server.url + "/versions/3", timeout=60).json()["model_version_status"][0]["state"] == "END"
    assert server.predict({"instances": [_b64(images[0])]}, path="/versions/3:predict").status_code == 404


def test_warm_up_requests_are_replayed_before_serving(served):
    server, version, _ = served
    replayed = [line for line in server.log if "version 1 is serving" in line]
    assert replayed and "10 warm-up requests replayed" in replayed[0], server.log


def test_sigterm_answers_the_request_in_flight_then_exits_143(exports, tmp_path):
    serving = tmp_path / "serving"
    _push(exports[0], serving, tmp_path, "v1")
    server = Server(serving / NAME, "--max_concurrent_requests=1")
    held, _ = _hold(server, {"instances": [_b64(exports[2][0])]}, {"instances": [_b64(exports[2][1])]})
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # shutting down: the port no longer takes connections
        try:
            server.status()
        except requests.ConnectionError:
            break
    else:
        raise AssertionError("the server kept accepting connections after SIGTERM")
    assert server.proc.poll() is None, "the server exited with a request in flight"
    status, text = held.release()
    assert status == 200, text
    assert server.proc.wait(timeout=60) == 143
    server._reader.join(timeout=60)
    assert any("server stopped" in line for line in server.log), server.log


def test_usage_errors_exit_2(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "pipeline.serve", f"--model_base_path={tmp_path / 'none'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "Traceback" not in missing.stderr
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "pipeline.serve", f"--model_base_path={tmp_path}", f"--rest_api_port={port}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
