"""Load benchmark of `python -m pipeline.serve` on localhost: clients, throughput, latency, memory,
and a version pushed mid-test.

Model: the shared pretrained MobileNetV2 (alpha 0.35, 96 px) with a dense head fitted on the
sign-language photos (tests/export_models.py), exported and pushed as version 1; a second head
(fewer epochs, so its probabilities differ) is exported for the mid-test push. Needs ../shared.
Every request is one encoded test photo as {"instances": [{"b64": ...}]}, sent by `--clients`
threads with their own `requests.Session`, as a TF Serving client would.

Phases, each `--requests` requests:
  baseline   the same server with --no-enable_batching (one request, one model call)
  batched    --enable_batching (the default); ratio = its throughput / the baseline's
  grpc       the batched server's gRPC API (--port): the same images as PredictRequests through
             `PredictionServiceStub`, one channel per client thread; each answer is matched to the
             probabilities the SavedModel gives for its image, as the REST answers are
  push       batched again, and version 2 is pushed once a third of the requests are answered:
             every answer is matched to version 1's or 2's probabilities for its image; the
             target is 0 failed requests and every answer after the switch from version 2.
Memory: the server's RSS (/proc) after start, after each phase; growth between the batched
phase's end and a repeat of it is reported as `rss_growth_repeat_mb` (the target: ~0).
Profile: the model alone (`serving_default` called in this process, decode included, batch 1 and
8) and the CPU milliseconds the server process and the client threads spend per request, which
show what limits the throughput. Clients and server share the machine's cores, so the throughput
is a floor of what a separate client machine would see.

    python -m benchmarks.serve_load [--clients 8] [--requests 400]
"""

import argparse
import base64
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests
import tensorflow as tf

import components.export
import components.push
from benchmarks.shared import SHARED, SIGN_DIGITS
from schemas.artifacts import Examples, ServingVersion
from schemas.split_reader import read_split

NAME = "classifier"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profiled(server, make_client, images, clients, total) -> dict:
    """A load phase with the CPU each side spent per request: where a request's time goes."""
    server_cpu, client_cpu = _cpu_seconds(server.proc.pid), time.process_time()
    phase = load(make_client, images, clients, total)
    phase["summary"]["server_cpu_ms_per_request"] = round(
        (_cpu_seconds(server.proc.pid) - server_cpu) * 1000 / total, 2
    )
    phase["summary"]["client_cpu_ms_per_request"] = round((time.process_time() - client_cpu) * 1000 / total, 2)
    return phase


def _in_process(saved_model_dir: str, images: list, calls: int = 200) -> dict:
    """The model alone: `serving_default` called in this process (decode included), batch 1 and 8."""
    fn = tf.saved_model.load(saved_model_dir).signatures["serving_default"]
    rates = {}
    for batch in (1, 8):
        fn(images=tf.constant(images[:batch]))
        start = time.perf_counter()
        for i in range(calls // batch):
            fn(images=tf.constant([images[(i * batch + j) % len(images)] for j in range(batch)]))
        rates[f"images_per_s_batch_{batch}"] = round(calls // batch * batch / (time.perf_counter() - start), 1)
    return rates


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


class Server:
    def __init__(self, base_path, *flags):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.serve", f"--model_base_path={base_path}", "--rest_api_port=0", *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().split(" at ")[1].strip()
        self.grpc_target = self.proc.stdout.readline().rsplit(" at ", 1)[1].strip() if "--port=0" in flags else None
        for _ in range(600):
            try:
                if requests.get(self.url, timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy loading the model
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def version(self) -> str:
        return requests.get(self.url + "/metadata", timeout=10).json()["model_spec"]["version"]

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=60)


def rest_client(url: str, images: list):
    """A REST client (its own session): send(image index) -> (HTTP status, probabilities or None)."""
    bodies = [json.dumps({"instances": [{"b64": base64.b64encode(b).decode()}]}) for b in images]
    session = requests.Session()

    def send(image: int):
        try:
            r = session.post(
                url + ":predict", data=bodies[image], timeout=60, headers={"Content-Type": "application/json"}
            )
        except requests.RequestException:
            return -1, None
        return r.status_code, r.json()["predictions"][0]["probabilities"] if r.status_code == 200 else None

    return send


def grpc_client(target: str, images: list):
    """A gRPC client (its own channel), TF Serving's client code shape: send(image index) -> (200 or the
    gRPC code's value, probabilities or None)."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    requests_ = []
    for image in images:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = NAME
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([image]))
        requests_.append(request)

    def send(image: int):
        try:
            response = stub.Predict(requests_[image], timeout=60)
        except grpc.RpcError as e:
            return e.code().value[0], None
        return 200, tf.make_ndarray(response.outputs["probabilities"])[0].tolist()

    return send


def load(make_client, images: list, clients: int, total: int, on_answer=None) -> dict:
    """Up to `total` requests from `clients` threads, each with its own `make_client()` (fewer if
    `on_answer(answers)` returns True: stop); per answer: (image index, latency s, status,
    probabilities, finish time)."""
    answers, lock, counter, stop = [], threading.Lock(), iter(range(total)), threading.Event()

    def client():
        send = make_client()
        while not stop.is_set():
            with lock:
                i = next(counter, None)
            if i is None:
                return
            image = i % len(images)
            start = time.perf_counter()
            status, probabilities = send(image)
            with lock:
                answers.append((image, time.perf_counter() - start, status, probabilities, time.perf_counter()))
                if on_answer and on_answer(answers):
                    stop.set()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    latencies = sorted(a[1] * 1000 for a in answers)
    return {
        "answers": answers,
        "summary": {
            "requests": len(answers),
            "clients": clients,
            "seconds": round(seconds, 2),
            "requests_per_s": round(len(answers) / seconds, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "errors": sum(a[2] != 200 for a in answers),
        },
    }


def version_of(answer, expected) -> int | None:
    """1 or 2: whose probabilities for this image the answer carries (None: neither's)."""
    image, _latency, status, probabilities, _finished = answer
    if status != 200:
        return None
    distances = [np.abs(np.array(probabilities) - e[image]).max() for e in expected]
    return 1 + int(np.argmin(distances)) if min(distances) < 1e-4 else None


def build_models(work: pathlib.Path) -> tuple:
    """(export dirs of the 30-epoch and 3-epoch heads, 32 test photos, each export's serving_default
    probabilities for them) under `work`."""
    from tests import export_models

    ingest = export_models.sign_digits_ingest_dir(work / "ingest", pathlib.Path(SIGN_DIGITS))
    config = components.export.ExportConfig(formats=("tflite_float32",))
    exports = [
        components.export.run(
            config,
            export_models.train_sign_digits(work / f"train{e}", ingest, pathlib.Path(SHARED, "weights"), epochs=e),
            ingest,
            str(work / f"export{e}"),
        ).output_dir
        for e in (30, 3)
    ]
    _, images, _ = read_split(Examples(ingest), "test")
    images = list(images[:32])
    expected = [
        tf.saved_model.load(os.path.join(e, "saved_model"))
        .signatures["serving_default"](images=tf.constant(images))["probabilities"]
        .numpy()
        for e in exports
    ]
    return exports, images, expected


def push_version(work: pathlib.Path, export_dir: str) -> ServingVersion:
    """Push `export_dir` (blessed) to work/serving/NAME as its next version."""
    from tests import export_models

    blessing = export_models.blessing_dir(work / f"evaluate{time.monotonic_ns()}", blessed=True)
    return ServingVersion(
        components.push.run(
            components.push.PushConfig(model_name=NAME), export_dir, blessing, str(work / "serving")
        ).output_dir
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--batch-threads", type=int, help="--num_batch_threads of the batched server (default: its own)"
    )
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-serve-"))
    exports, images, expected = build_models(work)

    def push(export_dir):
        return push_version(work, export_dir)

    push(exports[0])
    model_alone = _in_process(os.path.join(exports[0], "saved_model"), images)
    result = {
        "model_alone_in_process": model_alone,
        "model": "mobilenetv2_0.35 96px + dense head (sign-language)",
        "cpus": os.cpu_count(),
        "clients": args.clients,
        "requests_per_phase": args.requests,
        "batched_server_num_batch_threads": args.batch_threads or os.cpu_count(),
    }

    baseline = Server(work / "serving" / NAME, "--no-enable_batching")
    rest = lambda: rest_client(baseline.url, images)  # noqa: E731
    load(rest, images, args.clients, 2 * args.clients)  # connections and first calls
    result["baseline_no_batching"] = _profiled(baseline, rest, images, args.clients, args.requests)["summary"]
    baseline.stop()

    server = Server(
        work / "serving" / NAME,
        "--port=0",
        *([f"--num_batch_threads={args.batch_threads}"] if args.batch_threads else []),
    )
    rest = lambda: rest_client(server.url, images)  # noqa: E731
    rss = {"after_start": rss_mb(server.proc.pid)}
    load(rest, images, args.clients, 2 * args.clients)
    batched = _profiled(server, rest, images, args.clients, args.requests)
    rss["after_batched"] = rss_mb(server.proc.pid)
    result["batched"] = batched["summary"]
    result["batched"]["throughput_vs_baseline"] = round(
        batched["summary"]["requests_per_s"] / result["baseline_no_batching"]["requests_per_s"], 3
    )
    repeat = load(rest, images, args.clients, args.requests)
    rss["after_repeat"] = rss_mb(server.proc.pid)
    result["batched_repeat"] = repeat["summary"]
    grpc_ = lambda: grpc_client(server.grpc_target, images)  # noqa: E731
    load(grpc_, images, args.clients, 2 * args.clients)
    over_grpc = _profiled(server, grpc_, images, args.clients, args.requests)
    result["batched_grpc"] = {
        **over_grpc["summary"],
        "answers_matching_the_saved_model": sum(version_of(a, expected) == 1 for a in over_grpc["answers"]),
    }

    pushed = {}

    def push_then_run_on(answers):
        """Push version 2 after a third of `--requests`; stop `--requests` answers after version 2 first answers."""
        if len(answers) == args.requests // 3 and not pushed:
            pushed["at"] = time.perf_counter()
            threading.Thread(target=lambda: pushed.setdefault("version", push(exports[1]).version)).start()
        if "first_v2" not in pushed and version_of(answers[-1], expected) == 2:
            pushed["first_v2"] = len(answers)
        return "first_v2" in pushed and len(answers) >= pushed["first_v2"] + args.requests

    during = load(rest, images, args.clients, 50 * args.requests, push_then_run_on)
    rss["after_push"] = rss_mb(server.proc.pid)
    ordered = sorted(during["answers"], key=lambda a: a[4])
    versions = [version_of(a, expected) for a in ordered]
    first_v2 = versions.index(2) if 2 in versions else None
    result["push_mid_test"] = {
        **during["summary"],
        "version_pushed": pushed.get("version"),
        "answered_by_version": {str(v): versions.count(v) for v in (1, 2)},
        "answers_matching_neither_version": versions.count(None),
        "seconds_from_push_to_first_v2_answer": round(ordered[first_v2][4] - pushed["at"], 2) if first_v2 else None,
        "v1_answers_after_the_first_v2_answer": versions[first_v2:].count(1) if first_v2 else None,
        "served_version_after": server.version(),
    }
    rss["growth_repeat_mb"] = round(rss["after_repeat"] - rss["after_batched"], 1)
    result["server_rss_mb"] = rss
    result["exit_code_after_sigterm"] = server.stop()
    result["targets"] = {
        "errors_zero": all(
            result[p]["errors"] == 0
            for p in ("baseline_no_batching", "batched", "batched_repeat", "batched_grpc", "push_mid_test")
        ),
        "switched_to_v2": result["push_mid_test"]["served_version_after"] == "2" and versions.count(2) > 0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
