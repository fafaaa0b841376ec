"""The Starlette application: TF Serving's REST routes over one model's versions, its gRPC API on
`grpc_port`, and its metrics.

  GET  /v1/models/NAME[/versions/N]                 version status
  GET  /v1/models/NAME[/versions/N]/metadata        signatures (SignatureDefMap, proto field names)
  POST /v1/models/NAME[/versions/N]:predict         row or columnar format (server/rest_codec.py)
  POST /v1/models/NAME[/versions/N]:classify|:regress  answered as TF Serving answers them for
                                                    predict signatures (ours): 400, naming the method
  GET  /monitoring/prometheus/metrics               Prometheus text format (server/metrics.py)
Errors are {"error": message} with TF Serving's HTTP codes. A request body over `max_request_bytes`
is refused (413) before it is read in full; the rest of the limits are the predictor's, shared
with gRPC (server/predictor.py).
"""

import contextlib
import json
import logging
import re

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from server import grpc_api
from server.errors import Cancelled, InvalidArgument, NotFound, ServeError, TooLarge
from server.metrics import Metrics
from server.predictor import Predictor, ServeOptions
from server.rest_codec import decode_inputs, encode_outputs, parse_body
from server.servables import DEFAULT_SIGNATURE, ModelVersions, Poller

log = logging.getLogger(__name__)
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$"
)
_METHODS = {"classify": "tensorflow/serving/classify", "regress": "tensorflow/serving/regress"}
METRICS_PATH = "/monitoring/prometheus/metrics"  # TF Serving's


def _json(content, status: int = 200) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), status, media_type="application/json")


def _error(e: ServeError) -> Response:
    return _json({"error": str(e)}, e.status)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"request body of {declared} bytes is over this server's limit of {limit} bytes "
            "(--max_request_bytes); send fewer instances per request"
        )
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(
                    f"request body is over this server's limit of {limit} bytes (--max_request_bytes); "
                    "send fewer instances per request"
                )
            chunks.append(chunk)
    except ClientDisconnect:
        raise Cancelled(f"the client disconnected after {size} bytes of the request body") from None
    return b"".join(chunks)


def create_app(
    name: str,
    base_path: str,
    options: ServeOptions,
    host: str = "127.0.0.1",
    grpc_port: int | None = None,
    announce=print,
) -> Starlette:
    """The app serving the versions under `base_path`; its lifespan loads the first version before the
    port answers, starts gRPC on `grpc_port` (None: off; `announce` gets its address line), polls for
    new versions while it runs, and on shutdown stops gRPC and polling and drains the batch threads."""
    metrics = Metrics(name, options.max_batch_size)
    versions = ModelVersions(name, base_path, on_load=metrics.loaded)
    predictor = Predictor(versions, options, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        import anyio

        await anyio.to_thread.run_sync(versions.poll)
        grpc_server = None
        if grpc_port is not None:
            try:
                grpc_server, bound = await grpc_api.start(predictor, host, grpc_port, options.max_request_bytes)
            except (OSError, RuntimeError) as e:
                app.state.startup_error = (
                    f"cannot listen on {host}:{grpc_port} for gRPC: {e} (choose another --port, or stop what holds it)"
                )
                raise
            announce(f"serving {name} over gRPC at {host}:{bound}")
        poller = Poller(versions, options.poll_seconds)
        poller.start()
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=30)
            poller.stop()
            predictor.batcher.close()
            log.info(
                "server stopped: polling ended, batch threads drained; %d requests ran in %d batches",
                predictor.batcher.requests,
                predictor.batcher.batches,
            )

    def target(request: Request):
        match = _PATH.match(request.url.path)
        if not match:
            raise NotFound(f"Malformed request: {request.method} {request.url.path}")
        if match["name"] != versions.name:
            raise NotFound(f"Servable not found for request: Latest({match['name']})")
        version = match["version"]
        if version is not None and not version.isdigit():
            raise InvalidArgument(f"Failed to convert version: {version} to numeric.")
        return match, None if version is None else int(version)

    async def get(request: Request) -> Response:
        if request.url.path == METRICS_PATH:
            body, content_type = metrics.page()
            return Response(body, 200, headers={"Content-Type": content_type})
        try:
            match, version = target(request)
            if match["verb"]:
                raise NotFound(f"Malformed request: GET {request.url.path} (predict is a POST)")
            if match["metadata"]:
                servable = versions.servable(version)
                return _json(
                    {
                        "model_spec": {"name": versions.name, "signature_name": "", "version": str(servable.version)},
                        "metadata": {"signature_def": servable.signature_def},
                    }
                )
            return _json({"model_version_status": versions.statuses(version)})
        except ServeError as e:
            return _error(e)

    async def post(request: Request) -> Response:
        row_format = []

        async def decode(servable):
            if not match["verb"]:
                raise NotFound(f"Malformed request: POST {request.url.path}")
            body = parse_body(await _body(request, options.max_request_bytes))
            signature = body.get("signature_name") or DEFAULT_SIGNATURE
            specs = predictor.signature(servable, signature)
            if match["verb"] in _METHODS:
                raise InvalidArgument(
                    f"Expected {match['verb']} signature method_name to be "
                    f"{_METHODS[match['verb']]}. Was: {servable.method_names.get(signature)}"
                )
            inputs, rows = decode_inputs(body, specs)
            row_format.append(rows)
            return signature, inputs

        try:
            match, version = target(request)
            _, _, outputs = await predictor.predict("REST", version, decode)
            return _json(encode_outputs(outputs, row_format[0]))
        except ServeError as e:
            return _error(e)

    app = Starlette(
        routes=[Route("/{path:path}", get, methods=["GET"]), Route("/{path:path}", post, methods=["POST"])],
        lifespan=lifespan,
    )
    app.state.startup_error = None
    return app
