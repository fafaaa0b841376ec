"""Server-side batching: concurrent predict requests for one signature run as one batch.

Like TF Serving's `--enable_batching` (its BatchingSession), requests are concatenated along the
batch dimension, run once, and the outputs split back per request. When a batch runs: as soon as
it holds `max_batch_size` rows; otherwise once a batch thread is free and its oldest request has
waited `timeout_s`. With the default timeout of 0 that is dynamic batching (as Triton's default):
an idle server runs a request at once, and requests that arrive while every thread is busy queue
up and run together when one frees, so batches grow with the load and never add a wait when
there is none. Only requests whose inputs have the same dtypes and non-batch shapes batch together
(images already resized do; raw pixel arrays of different sizes run apart). If a batch fails on
bad input (one request's bytes are not an image), each of its requests is rerun alone, so a
client's bad request fails only that client.
"""

import asyncio
import concurrent.futures
import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class _Queue:
    servable: object
    signature: str
    since: float  # loop time of its oldest request
    items: list = dataclasses.field(default_factory=list)  # (inputs, rows, future)

    @property
    def rows(self) -> int:
        return sum(rows for _, rows, _ in self.items)


class Batcher:
    """Runs `servable.run(signature, inputs)` for queued requests in `threads` worker threads."""

    def __init__(self, max_batch_size: int, timeout_s: float, threads: int, on_batch=None):
        """on_batch(rows): called as each batch starts (the metrics' batch sizes)."""
        self.max_batch_size, self.timeout_s, self.threads = max_batch_size, timeout_s, threads
        self._on_batch = on_batch or (lambda rows: None)
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="batch")
        self._queues: dict = {}
        self._running = 0
        self.batches = self.requests = 0  # batches run and requests in them (the load benchmark reports them)

    @staticmethod
    def _key(servable, signature: str, inputs: dict) -> tuple:
        return (id(servable), signature, *((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items())))

    async def run(self, servable, signature: str, inputs: dict) -> dict:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        key = self._key(servable, signature, inputs)
        queue = self._queues.setdefault(key, _Queue(servable, signature, loop.time()))
        queue.items.append((inputs, len(next(iter(inputs.values()))), future))
        if queue.rows >= self.max_batch_size or (self.timeout_s <= 0 and self._running < self.threads):
            self._start(key)
        elif len(queue.items) == 1 and self.timeout_s > 0:
            loop.call_later(self.timeout_s, self._run_due)
        return await future

    def _run_due(self) -> None:
        """Start the due queues, oldest first, while a batch thread is free."""
        now = asyncio.get_running_loop().time()
        for key, queue in sorted(self._queues.items(), key=lambda kv: kv[1].since):
            if self._running >= self.threads:
                return
            if now - queue.since >= self.timeout_s - 1e-6:
                self._start(key)

    def _start(self, key) -> None:
        queue = self._queues.pop(key)
        self.batches += 1
        self.requests += len(queue.items)
        self._on_batch(queue.rows)
        self._running += 1
        done = asyncio.get_running_loop().run_in_executor(
            self._executor, _run_batch, queue.servable, queue.signature, [i[0] for i in queue.items]
        )
        done.add_done_callback(lambda f: self._finished(f, queue.items))

    def _finished(self, done, items: list) -> None:
        self._running -= 1
        _deliver(done, items)
        self._run_due()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


def _run_batch(servable, signature: str, requests: list) -> list:
    """Per request: its outputs, or the exception it alone raises."""
    if len(requests) == 1:
        try:
            return [servable.run(signature, requests[0])]
        except Exception as e:
            return [e]
    names = sorted(requests[0])
    try:
        outputs = servable.run(signature, {n: np.concatenate([r[n] for r in requests]) for n in names})
    except tf.errors.InvalidArgumentError:  # someone's input is bad: find whose
        return [_run_batch(servable, signature, [r])[0] for r in requests]
    except Exception as e:
        return [e] * len(requests)
    bounds = np.cumsum([len(r[names[0]]) for r in requests])[:-1]
    split = {n: np.split(v, bounds) for n, v in outputs.items()}
    return [{n: split[n][i] for n in split} for i in range(len(requests))]


def _deliver(done, items: list) -> None:
    try:
        results = done.result()
    except Exception as e:
        results = [e] * len(items)
    for (_, _, future), result in zip(items, results):
        if future.cancelled():
            continue
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)
