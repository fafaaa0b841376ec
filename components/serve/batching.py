"""Server-side batching: concurrent predict requests for one signature run as one batch.

Like TF Serving's `--enable_batching` (its BatchingSession): requests wait up to
`timeout_s` for others (or until `max_batch_size` rows are queued), are concatenated along the
batch dimension, run once, and the outputs are split back per request. Only requests whose
inputs have the same dtypes and non-batch shapes batch together (images already resized do; raw
pixel arrays of different sizes run apart). If a batch fails on bad input (say one request's
bytes are not an image), each of its requests is rerun alone, so a client's bad request fails
only that client.
"""
import asyncio
import concurrent.futures

import numpy as np
import tensorflow as tf


class Batcher:
    """Runs `servable.run(signature, inputs)` for queued requests in `threads` worker threads."""

    def __init__(self, max_batch_size: int, timeout_s: float, threads: int):
        self.max_batch_size, self.timeout_s = max_batch_size, timeout_s
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="batch")
        self._queues = {}  # key -> [(inputs, rows, future)]
        self.batches = 0  # batches run (read by tests and the load benchmark)
        self.requests = 0

    @staticmethod
    def _key(servable, signature: str, inputs: dict) -> tuple:
        return (id(servable), signature, *((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items())))

    async def run(self, servable, signature: str, inputs: dict) -> dict:
        loop = asyncio.get_running_loop()
        rows = len(next(iter(inputs.values())))
        future = loop.create_future()
        key = self._key(servable, signature, inputs)
        queue = self._queues.setdefault(key, [])
        queue.append((inputs, rows, future))
        if sum(r for _, r, _ in queue) >= self.max_batch_size or self.timeout_s <= 0:
            self._flush(key, servable, signature)
        elif len(queue) == 1:
            loop.call_later(self.timeout_s, self._flush, key, servable, signature)
        return await future

    def _flush(self, key, servable, signature: str) -> None:
        queue = self._queues.pop(key, [])
        if not queue:
            return
        self.batches += 1
        self.requests += len(queue)
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, _run_batch, servable, signature, [q[0] for q in queue])
        done.add_done_callback(lambda f: _deliver(f, queue))

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


def _deliver(done, queue: list) -> None:
    try:
        results = done.result()
    except Exception as e:
        results = [e] * len(queue)
    for (_, _, future), result in zip(queue, results):
        if future.cancelled():
            continue
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)
