"""The Starlette application: TF Serving's REST routes over one model's versions.

  GET  /v1/models/NAME[/versions/N]                 version status
  GET  /v1/models/NAME[/versions/N]/metadata        signatures (SignatureDefMap, proto field names)
  POST /v1/models/NAME[/versions/N]:predict         row or columnar format (components/serve/rest_codec.py)
  POST /v1/models/NAME[/versions/N]:classify|:regress  answered as TF Serving answers them for
                                                    predict signatures (ours): 400, naming the method
Errors are {"error": message} with TF Serving's HTTP codes. A request body over `max_request_bytes`
is refused (413) before it is read in full; beyond `max_concurrent` predict requests in flight the
server answers 503 at once (TF Serving answers a full batching queue the same way) instead of
queueing without bound.
"""
import contextlib
import dataclasses
import json
import logging
import re

import tensorflow as tf
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.serve.batching import Batcher
from components.serve.rest_codec import (InvalidArgument, NotFound, RestError, TooLarge, Unavailable, decode_inputs,
                                         encode_outputs, parse_body)
from components.serve.servables import DEFAULT_SIGNATURE, ModelVersions, Poller

log = logging.getLogger(__name__)
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
                   r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$")
_METHODS = {"classify": "tensorflow/serving/classify", "regress": "tensorflow/serving/regress"}


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """The server's limits and batching (pipeline/serve.py's flags)."""

    poll_seconds: float = 1.0
    max_batch_size: int = 32
    batch_timeout_s: float = 0.002
    batch_threads: int = 2
    max_request_bytes: int = 16 * 2**20
    max_concurrent: int = 64


def _json(content, status: int = 200) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), status, media_type="application/json")


def _error(e: RestError) -> Response:
    return _json({"error": str(e)}, e.status)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes is over this server's limit of {limit} bytes "
                       "(--max_request_bytes); send fewer instances per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is over this server's limit of {limit} bytes (--max_request_bytes); "
                           "send fewer instances per request")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(versions: ModelVersions, options: ServeOptions) -> Starlette:
    """The app serving `versions`; its lifespan loads the first version before the port answers,
    polls for new ones while it runs, and on shutdown stops polling and drains the batch threads."""
    batcher = Batcher(options.max_batch_size, options.batch_timeout_s, options.batch_threads)
    in_flight = {"n": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        import anyio

        await anyio.to_thread.run_sync(versions.poll)
        poller = Poller(versions, options.poll_seconds)
        poller.start()
        app.state.batcher = batcher
        try:
            yield
        finally:
            poller.stop()
            batcher.close()
            log.info("server stopped: polling ended, batch threads drained; %d requests ran in %d batches",
                     batcher.requests, batcher.batches)

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
        try:
            match, version = target(request)
            if match["verb"]:
                raise NotFound(f"Malformed request: GET {request.url.path} (predict is a POST)")
            if match["metadata"]:
                servable = versions.servable(version)
                return _json({"model_spec": {"name": versions.name, "signature_name": "",
                                             "version": str(servable.version)},
                              "metadata": {"signature_def": servable.signature_def}})
            return _json({"model_version_status": versions.statuses(version)})
        except RestError as e:
            return _error(e)

    async def post(request: Request) -> Response:
        if in_flight["n"] >= options.max_concurrent:
            return _error(Unavailable(f"the server has {options.max_concurrent} requests in flight "
                                      "(--max_concurrent_requests); retry later"))
        in_flight["n"] += 1
        try:
            match, version = target(request)
            if not match["verb"]:
                raise NotFound(f"Malformed request: POST {request.url.path}")
            servable = versions.servable(version)
            body = parse_body(await _body(request, options.max_request_bytes))
            signature = body.get("signature_name") or DEFAULT_SIGNATURE
            if signature not in servable.signatures:
                raise InvalidArgument(f'Serving signature name: "{signature}" not found in signature def')
            if match["verb"] in _METHODS:
                raise InvalidArgument(f"Expected {match['verb']} signature method_name to be "
                                      f"{_METHODS[match['verb']]}. Was: {servable.method_names.get(signature)}")
            inputs, row_format = decode_inputs(body, servable.input_specs[signature])
            try:
                outputs = await batcher.run(servable, signature, inputs)
            except tf.errors.InvalidArgumentError as e:
                raise InvalidArgument(e.message.splitlines()[0]) from None
            return _json(encode_outputs(outputs, row_format))
        except RestError as e:
            return _error(e)
        except Exception as e:  # a bug or a TensorFlow failure: one line for the client, the trace in the log
            log.exception("predict failed")
            return _error(RestError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
        finally:
            in_flight["n"] -= 1

    return Starlette(routes=[Route("/{path:path}", get, methods=["GET"]),
                             Route("/{path:path}", post, methods=["POST"])], lifespan=lifespan)
