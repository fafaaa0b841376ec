"""A `pipeline.serve` subprocess for the tests, and what they push to it."""

import base64
import signal
import subprocess
import sys
import threading
import time

import requests

import components.push
from schemas.artifacts import ServingVersion
from tests import export_models

NAME = "classifier"


def push(export_dir, serving_dir, tmp_path, tag) -> ServingVersion:
    blessing = export_models.blessing_dir(tmp_path / f"evaluate_{tag}", blessed=True)
    result = components.push.run(components.push.PushConfig(model_name=NAME), export_dir, blessing, str(serving_dir))
    assert result.pushed
    return ServingVersion(result.output_dir)


class Server:
    """A `pipeline.serve` subprocess on a free port; its stderr (the log) is kept for the assertions."""

    def __init__(self, base_path, *flags):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.serve",
                f"--model_base_path={base_path}",
                "--rest_api_port=0",
                "--file_system_poll_wait_seconds=0.2",
                *flags,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith(f"serving {NAME} at http://"), line + self.proc.stderr.read()
        self.url = line.split(" at ")[1].strip()  # http://127.0.0.1:PORT/v1/models/classifier
        self.grpc_target = None  # HOST:PORT with --port
        if any(flag.startswith("--port=") for flag in flags):
            line = self.proc.stdout.readline()
            assert line.startswith(f"serving {NAME} over gRPC at "), line + self.proc.stderr.read()
            self.grpc_target = line.rsplit(" at ", 1)[1].strip()
        self.log = []
        self._reader = threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True)
        self._reader.start()
        self.wait_for(lambda s: any(v["state"] == "AVAILABLE" for v in s), "a version to be served")

    def status(self) -> list:
        return requests.get(self.url, timeout=60).json().get("model_version_status", [])

    def wait_for(self, condition, what, seconds=300):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if condition(self.status()):
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; log:\n{''.join(self.log)}")

    def predict(self, body, path=":predict", **kw):
        return requests.post(self.url + path, json=body, timeout=60, **kw)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)  # the log's last lines
        return code


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}
