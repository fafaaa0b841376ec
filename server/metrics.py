"""The server's Prometheus metrics, at TF Serving's path `/monitoring/prometheus/metrics`.

Written with `prometheus-client` into a registry of the server's own, named as TF Serving names
its metrics (`:tensorflow:serving:...`; a counter's samples end in `_total`, as the client library
writes counters, and latencies are in seconds, Prometheus's unit) plus this server's admission
gauges (`:transferline:serving:...`). TF Serving exports them only with --monitoring_config_file;
this server always does.
"""

import prometheus_client as prom

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, model_name: str, max_batch_size: int):
        self.model_name = model_name
        self.registry = prom.CollectorRegistry(auto_describe=True)
        request = ("model_name", "version", "signature_name", "entrypoint", "status")
        self._requests = prom.Counter(
            ":tensorflow:serving:request_count",
            "Predict requests answered, by model, version, signature, API (REST or GRPC) and status (gRPC code name)",
            request,
            registry=self.registry,
        )
        self._latency = prom.Histogram(
            ":tensorflow:serving:request_latency_seconds",
            "Wall time of predict requests, from admission to answer",
            ("model_name", "signature_name", "entrypoint"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, max_batch_size})
        self._batch_size = prom.Histogram(
            ":tensorflow:serving:batching_session:batch_size",
            "Rows in each batch run",
            ("model_name",),
            buckets=buckets,
            registry=self.registry,
        )
        self._loads = prom.Counter(
            ":tensorflow:serving:model_load_count",
            "Version loads, by outcome (OK or ERROR)",
            ("model_name", "status"),
            registry=self.registry,
        )
        self._version = prom.Gauge(
            ":tensorflow:serving:model_version",
            "The version being served (0: none)",
            ("model_name",),
            registry=self.registry,
        )
        self._version.labels(model_name).set(0)
        self.in_flight = prom.Gauge(
            ":transferline:serving:requests_in_flight",
            "Predict requests admitted and not yet answered",
            registry=self.registry,
        )
        self.decoding_bytes = prom.Gauge(
            ":transferline:serving:decoding_bytes_in_use",
            "Bytes of decoded pixels reserved by requests in flight (--max_decoding_bytes)",
            registry=self.registry,
        )

    def request(self, version, signature: str, entrypoint: str, status: str, seconds: float) -> None:
        self._requests.labels(self.model_name, str(version or ""), signature or "", entrypoint, status).inc()
        self._latency.labels(self.model_name, signature or "", entrypoint).observe(seconds)

    def batch(self, rows: int) -> None:
        self._batch_size.labels(self.model_name).observe(rows)

    def loaded(self, version: int, ok: bool) -> None:
        self._loads.labels(self.model_name, "OK" if ok else "ERROR").inc()
        if ok:
            self._version.labels(self.model_name).set(version)

    def page(self) -> tuple:
        """(body, content type) of the metrics page."""
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
