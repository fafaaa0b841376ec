"""The predict path the REST and gRPC APIs share: admission, checks, batching, errors and metrics.

Each request, whichever API it came by:
  1. takes one of `max_concurrent` slots, or is refused at once (UNAVAILABLE / 503);
  2. names a served version and one of its signatures (NOT_FOUND / INVALID_ARGUMENT);
  3. is decoded by its API into {input: array} (a REST body is only read once admitted);
  4. holds at most `max_instances` rows;
  5. for the signatures that decode images, has every image's size read from its header and checked
     against the model's budget (`Servable.decoded_pixels`), then reserves its decoded bytes from
     the server's decoding budget (server/admission.py), waiting if it must;
  6. runs in a batch (server/batching.py).
Every failure names its cause on one line: TensorFlow's first meaningful line, prefixed with the
image it concerns (found by bisection when a request of several images fails to decode).
"""

import asyncio
import contextlib
import dataclasses
import logging
import time

import numpy as np
import tensorflow as tf

from components.common.decoding_budget import BYTES_PER_PIXEL
from components.common.errors import tensorflow_cause
from server.admission import DecodingBudget
from server.batching import Batcher
from server.errors import InvalidArgument, ServeError, Unavailable
from server.metrics import Metrics
from server.servables import DECODING_INPUTS, DEFAULT_SIGNATURE, ModelVersions

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """The server's limits and batching (pipeline/serve.py's flags).

    max_decoding_bytes: decoded pixels admitted at once, in bytes; None: room for four images at the
    served model's pixel budget (export.max_image_pixels x 24 bytes x 4, 1.2 GB at the defaults).
    """

    poll_seconds: float = 1.0
    max_batch_size: int = 32
    batch_timeout_s: float = 0.002
    batch_threads: int = 2
    max_request_bytes: int = 16 * 2**20
    max_concurrent: int = 64
    max_instances: int = 1024
    max_decoding_bytes: int | None = None


class Predictor:
    def __init__(self, versions: ModelVersions, options: ServeOptions, metrics: Metrics):
        self.versions, self.options, self.metrics = versions, options, metrics
        self.batcher = Batcher(
            options.max_batch_size, options.batch_timeout_s, options.batch_threads, on_batch=metrics.batch
        )
        self.budget = DecodingBudget(options.max_decoding_bytes or 0)
        self.in_flight = 0
        metrics.in_flight.set_function(lambda: self.in_flight)
        metrics.decoding_bytes.set_function(lambda: self.budget.in_use)

    @contextlib.contextmanager
    def _slot(self):
        if self.in_flight >= self.options.max_concurrent:
            raise Unavailable(
                f"the server has {self.options.max_concurrent} requests in flight "
                "(--max_concurrent_requests); retry later"
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def predict(self, entrypoint: str, version: int | None, decode) -> tuple:
        """(servable, signature, outputs) for a request; `decode(servable)` -> (signature name, inputs) is
        the API's part. Raises ServeError; counts the request in the metrics whatever happens."""
        started, servable, signature, status = time.monotonic(), None, "", "OK"
        try:
            with self._slot():
                servable = self.versions.servable(version)
                signature, inputs = await decode(servable)
                signature = signature or DEFAULT_SIGNATURE
                return servable, signature, await self._run(servable, signature, inputs)
        except ServeError as e:
            status = e.code.name
            raise
        except Exception as e:  # a bug or a TensorFlow failure: one line for the client, the trace in the log
            log.exception("predict failed")
            status = "INTERNAL"
            raise ServeError(f"{type(e).__name__}: {tensorflow_cause(str(e))}") from None
        finally:
            self.metrics.request(
                servable.version if servable else version, signature, entrypoint, status, time.monotonic() - started
            )

    def signature(self, servable, name: str) -> dict:
        """The input specs of `servable`'s signature `name`, or TF Serving's error for an unknown one."""
        name = name or DEFAULT_SIGNATURE
        if name not in servable.signatures:
            raise InvalidArgument(f'Serving signature name: "{name}" not found in signature def')
        return servable.input_specs[name]

    async def _run(self, servable, signature: str, inputs: dict) -> dict:
        rows = len(next(iter(inputs.values())))
        if rows > self.options.max_instances:
            raise InvalidArgument(
                f"{rows} instances in one request, over this server's limit of "
                f"{self.options.max_instances} (--max_instances_per_request); split the request"
            )
        pixels = await asyncio.to_thread(servable.decoded_pixels, signature, inputs)
        self.budget.limit = self.options.max_decoding_bytes or 4 * servable.max_image_pixels * BYTES_PER_PIXEL
        async with self.budget.reserve(0 if pixels is None else int(pixels.sum()) * BYTES_PER_PIXEL):
            try:
                return await self.batcher.run(servable, signature, inputs)
            except tf.errors.InvalidArgumentError as e:
                cause = tensorflow_cause(e.message)
                if signature in DECODING_INPUTS and not cause.startswith("image "):
                    index = 0 if rows == 1 else await asyncio.to_thread(_first_failing, servable, signature, inputs)
                    cause = f"image {index}: {cause}"
                raise InvalidArgument(cause) from None


def _first_failing(servable, signature: str, inputs: dict) -> int:
    """The index of the first row of `inputs` that fails alone, by bisection: about as much work as the
    request itself, and only on the error path."""
    low, high = 0, len(next(iter(inputs.values())))
    while high - low > 1:
        middle = (low + high) // 2
        try:
            servable.run(signature, {name: value[low:middle] for name, value in inputs.items()})
            low = middle
        except tf.errors.InvalidArgumentError:
            high = middle
    return low


def as_array(name: str, value: np.ndarray, spec: tf.TensorSpec) -> np.ndarray:
    """`value` for input `name` if its dtype and shape fit the signature's spec, else InvalidArgument."""
    strings = value.dtype == object or value.dtype.kind == "S"
    if strings != (spec.dtype == tf.string) or (not strings and value.dtype != spec.dtype.as_numpy_dtype):
        given = "string" if strings else tf.as_dtype(value.dtype).name
        raise InvalidArgument(f"input '{name}': dtype {given} does not match the signature's {spec.dtype.name}")
    if not spec.shape.is_compatible_with(value.shape):
        raise InvalidArgument(
            f"input '{name}': shape {list(value.shape)} does not match the signature's "
            f"{spec.shape.as_list()} (None = any size)"
        )
    if not value.shape or value.shape[0] == 0:
        raise InvalidArgument(f"input '{name}': no instances (the first dimension is the batch)")
    return value
