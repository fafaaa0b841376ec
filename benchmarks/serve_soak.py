"""Soak benchmark of `python -m pipeline.serve`: decompression bombs at once, then minutes of mixed
valid and hostile traffic over REST and gRPC with a version pushed in the middle.

Model: as benchmarks/serve_load.py (the shared pretrained MobileNetV2 with sign-language heads;
needs ../shared). One server, REST and gRPC (--port), default limits.

Phases:
  bombs     idle RSS (after warm-up), then `--bombs` concurrent REST requests of a 30,000 x 30,000
            PNG, of a 12,000 x 12,000 PNG, and over gRPC of the 30,000 x 30,000 one: every answer
            must be 400 / INVALID_ARGUMENT naming export.max_image_pixels; peak RSS is the
            server's VmHWM (the kernel's high-water mark, no sampling to miss a peak); a valid
            request must be answered after each wave.
  large     `--bombs` concurrent requests of a legal 4,000 x 3,000 PNG (12 MP, just under the
            pixel budget, ~190 MB each to decode): the decoding budget (--max_decoding_bytes,
            default 4 images) must keep the peak near idle + budget, and all must be answered 200.
  soak      `--minutes` of traffic from `--clients` valid clients (alternately REST and gRPC, one
            test photo per request) and `--hostile` clients cycling through hostile requests (bombs
            of each format, many-frame GIFs, junk, deep JSON, too many instances, wrong dtypes),
            version 2 pushed at 40% of the time. Targets: no error on a valid request, every hostile
            one answered with its 4xx, RSS flat over the second half (which starts after the new
            version's load; its least-squares slope, and the RSS every 10 s in `rss_mb_every_10_s`).
The metrics page is scraped after the soak and parsed with prometheus-client's own parser.

    python -m benchmarks.serve_soak [--minutes 5] [--clients 4] [--hostile 2] [--bombs 20]
"""

import argparse
import base64
import itertools
import json
import pathlib
import statistics
import tempfile
import threading
import time

import grpc
import numpy as np
import requests
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from benchmarks.serve_load import NAME, Server, build_models, grpc_client, push_version, rest_client, rss_mb
from tests import hostile_images

_LIMIT = "export.max_image_pixels"


def _hwm_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        return round(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024, 1)


def _b64_body(images: list, signature: str = "serving_default") -> str:
    return json.dumps(
        {"signature_name": signature, "instances": [{"b64": base64.b64encode(b).decode()} for b in images]}
    )


def _at_once(calls: list) -> list:
    """Run the calls in threads released together; their results in order."""
    results, gate = [None] * len(calls), threading.Barrier(len(calls))

    def run(i):
        gate.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _rest_post(url: str, body: str):
    def call():
        r = requests.post(url + ":predict", data=body, headers={"Content-Type": "application/json"}, timeout=300)
        return r.status_code, r.json().get("error", "")

    return call


def _grpc_predict(target: str, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))  # one channel, reused

    def call():
        try:
            stub.Predict(request, timeout=300)
            return 200, ""
        except grpc.RpcError as e:
            return e.code().name, e.details()

    return call


def _wave(server, calls: list, valid_body: str, expect) -> dict:
    before_hwm = _hwm_mb(server.proc.pid)
    started = time.perf_counter()
    answers = _at_once(calls)
    seconds = time.perf_counter() - started
    after = _rest_post(server.url, valid_body)()
    return {
        "requests": len(calls),
        "seconds": round(seconds, 2),
        "answers_as_expected": sum(map(expect, answers)),
        "example_answer": list(answers[0]),
        "peak_rss_mb": _hwm_mb(server.proc.pid),
        "peak_rss_before_mb": before_hwm,
        "valid_request_after": after[0],
    }


def _hostile_requests(server) -> list:
    """(name, call, expected status) cycled by the hostile clients."""
    url, target = server.url, server.grpc_target
    bombs = {
        "png": hostile_images.png_bomb(30000, 30000),
        "jpeg": hostile_images.jpeg_bomb(),
        "gif": hostile_images.gif_bomb(),
        "bmp": hostile_images.bmp_bomb(),
        "webp": hostile_images.webp_bomb(),
    }
    cases = [(f"rest_bomb_{k}", _rest_post(url, _b64_body([v])), 400) for k, v in bombs.items()]
    cases += [
        ("rest_gif_150_frames", _rest_post(url, _b64_body([hostile_images.animation("GIF", 150)])), 400),
        ("rest_junk", _rest_post(url, _b64_body([b"junk"])), 400),
        ("rest_deep_json", _rest_post(url, "[" * 100000 + "]" * 100000), 400),
        ("rest_too_many_instances", _rest_post(url, _b64_body([b"x"] * 1025)), 400),
        (
            "rest_wrong_dtype",
            _rest_post(url, json.dumps({"signature_name": "serve_images", "inputs": [[[["a", "b", "c"]]]]})),
            400,
        ),
        ("grpc_bomb_png", _grpc_predict(target, images=[bombs["png"]]), "INVALID_ARGUMENT"),
        ("grpc_junk", _grpc_predict(target, images=[b"junk"]), "INVALID_ARGUMENT"),
        ("grpc_wrong_dtype", _grpc_predict(target, images=np.zeros(3, np.float32)), "INVALID_ARGUMENT"),
    ]
    return cases


def _soak(server, work, exports, images, expected, args) -> dict:
    from benchmarks.serve_load import version_of

    stop, lock, records, rss = threading.Event(), threading.Lock(), [], []
    started = time.perf_counter()
    seconds = args.minutes * 60

    def valid(index):
        send = rest_client(server.url, images) if index % 2 == 0 else grpc_client(server.grpc_target, images)
        api = "rest" if index % 2 == 0 else "grpc"
        for i in itertools.count(index):
            if stop.is_set():
                return
            t = time.perf_counter()
            status, probabilities = send(i % len(images))
            ok = status == 200 and version_of((i % len(images), 0, 200, probabilities, 0), expected) is not None
            with lock:
                records.append(("valid", api, ok, time.perf_counter() - t, t - started))

    hostile_cases = _hostile_requests(server)

    def hostile(index):
        for name, call, status in itertools.islice(itertools.cycle(hostile_cases), index, None):
            if stop.is_set():
                return
            t = time.perf_counter()
            got, message = call()
            with lock:
                records.append((name, "hostile", got == status, time.perf_counter() - t, t - started))

    threads = [threading.Thread(target=valid, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=hostile, args=(i,)) for i in range(args.hostile)]
    for t in threads:
        t.start()
    pushed = None
    while (elapsed := time.perf_counter() - started) < seconds:
        rss.append((elapsed, rss_mb(server.proc.pid)))
        if pushed is None and elapsed >= 0.4 * seconds:
            pushed = push_version(work, exports[1]).version
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join()
    half = [(t, m) for t, m in rss if t >= seconds / 2]
    slope = np.polyfit([t for t, _ in half], [m for _, m in half], 1)[0] * 60
    valid_latencies = sorted(r[3] * 1000 for r in records if r[0] == "valid" and r[2])
    hostile_records = [r for r in records if r[1] == "hostile"]
    return {
        "minutes": args.minutes,
        "valid_clients": args.clients,
        "hostile_clients": args.hostile,
        "valid_requests": sum(r[0] == "valid" for r in records),
        "valid_by_api": {api: sum(r[0] == "valid" and r[1] == api for r in records) for api in ("rest", "grpc")},
        "valid_errors": sum(r[0] == "valid" and not r[2] for r in records),
        "hostile_requests": len(hostile_records),
        "hostile_not_answered_as_expected": sorted({r[0] for r in hostile_records if not r[2]}),
        "valid_p50_ms": round(statistics.median(valid_latencies), 1),
        "valid_p99_ms": round(valid_latencies[int(0.99 * (len(valid_latencies) - 1))], 1),
        "version_pushed_at_40_percent": pushed,
        "served_version_after": server.version(),
        "rss_mb_start": rss[0][1],
        "rss_mb_end": rss[-1][1],
        "peak_rss_mb": _hwm_mb(server.proc.pid),
        "rss_slope_second_half_mb_per_min": round(float(slope), 2),
        "rss_growth_second_half_mb": round(half[-1][1] - half[0][1], 1),
        "rss_mb_every_10_s": [m for t, m in rss[::10]],
    }


def _metrics(server) -> dict:
    """The metrics page after the soak, parsed by prometheus-client: request counts by API and status,
    batches, loads and the version served."""
    page = requests.get(server.url.split("/v1/")[0] + "/monitoring/prometheus/metrics", timeout=30).text
    families = {f.name: f for f in text_string_to_metric_families(page)}
    requests_by = {}
    for sample in families[":tensorflow:serving:request_count"].samples:
        if sample.name.endswith("_total"):
            key = f"{sample.labels['entrypoint']} {sample.labels['status']}"
            requests_by[key] = requests_by.get(key, 0) + int(sample.value)
    batch = {
        s.name: s.value
        for s in families[":tensorflow:serving:batching_session:batch_size"].samples
        if s.name.endswith(("_count", "_sum"))
    }
    return {
        "families": len(families),
        "requests_by_entrypoint_and_status": requests_by,
        "batches": int(sum(v for k, v in batch.items() if k.endswith("_count"))),
        "rows_in_batches": int(sum(v for k, v in batch.items() if k.endswith("_sum"))),
        "model_loads": {
            s.labels["status"]: int(s.value)
            for s in families[":tensorflow:serving:model_load_count"].samples
            if s.name.endswith("_total")
        },
        "model_version": int(families[":tensorflow:serving:model_version"].samples[0].value),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--clients", type=int, default=4, help="valid clients, alternately REST and gRPC")
    parser.add_argument("--hostile", type=int, default=2, help="hostile clients")
    parser.add_argument("--bombs", type=int, default=20, help="concurrent requests in each bomb wave")
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-soak-"))
    exports, images, expected = build_models(work)
    push_version(work, exports[0])
    server = Server(work / "serving" / NAME, "--port=0")
    valid_body = _b64_body(images[:1])
    for _ in range(20):  # warm: connections, first batches
        _rest_post(server.url, valid_body)()
    result = {"idle_rss_mb": rss_mb(server.proc.pid), "idle_peak_rss_mb": _hwm_mb(server.proc.pid)}
    names_limit = lambda a: a[0] in (400, "INVALID_ARGUMENT") and _LIMIT in a[1]  # noqa: E731
    for name, data in (
        ("png_30000", hostile_images.png_bomb(30000, 30000)),
        ("png_12000", hostile_images.png_bomb(12000, 12000)),
    ):
        result[f"bombs_rest_{name}"] = _wave(
            server, [_rest_post(server.url, _b64_body([data]))] * args.bombs, valid_body, names_limit
        )
    result["bombs_grpc_png_30000"] = _wave(
        server,
        [_grpc_predict(server.grpc_target, images=[hostile_images.png_bomb(30000, 30000)])] * args.bombs,
        valid_body,
        names_limit,
    )
    large = _b64_body([hostile_images.png_bomb(4000, 3000)])
    result["large_legal_png_4000x3000"] = _wave(
        server, [_rest_post(server.url, large)] * args.bombs, valid_body, lambda a: a[0] == 200
    )
    result["soak"] = _soak(server, work, exports, images, expected, args)
    result["metrics_after_soak"] = _metrics(server)
    result["exit_code_after_sigterm"] = server.stop()
    bombs = [result[k] for k in result if k.startswith("bombs_")]
    result["targets"] = {
        "bombs_all_refused_naming_the_limit": all(w["answers_as_expected"] == w["requests"] for w in bombs),
        "bombs_peak_rss_within_2x_idle": max(w["peak_rss_mb"] for w in bombs) <= 2 * result["idle_rss_mb"],
        "valid_after_every_wave": all(w["valid_request_after"] == 200 for w in bombs),
        "large_all_answered": result["large_legal_png_4000x3000"]["answers_as_expected"] == args.bombs,
        "soak_no_valid_errors": result["soak"]["valid_errors"] == 0,
        "soak_hostile_all_as_expected": not result["soak"]["hostile_not_answered_as_expected"],
        "soak_rss_flat": abs(result["soak"]["rss_slope_second_half_mb_per_min"]) < 5,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
