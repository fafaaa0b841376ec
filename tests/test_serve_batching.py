"""The server's batcher: concurrent requests run as one batch, outputs go back to their requests, and
only compatible inputs batch together."""

import asyncio
import threading

import numpy as np

from server.batching import Batcher


class Doubler:
    """A servable stand-in that records the batch sizes it was run with."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches, self.gate, self.started = [], gate, threading.Event()

    def run(self, signature, inputs):
        x = inputs["x"]
        self.batches.append(len(x))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=60), "the test never opened the gate"
        return {"y": x * 2}


def _gather(batcher, servable, requests):
    async def main():
        return await asyncio.gather(*(batcher.run(servable, "s", r) for r in requests))

    return asyncio.run(main())


def test_concurrent_requests_run_as_one_batch_and_get_their_own_rows():
    servable, batcher = Doubler(), Batcher(max_batch_size=32, timeout_s=0.05, threads=1)
    requests = [{"x": np.full((n, 2), i, np.float32)} for i, n in enumerate([1, 3, 2])]
    results = _gather(batcher, servable, requests)
    assert servable.batches == [6]
    for i, (request, result) in enumerate(zip(requests, results)):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)
    batcher.close()


def test_a_full_batch_runs_without_waiting_and_shapes_that_differ_run_apart():
    servable, batcher = Doubler(), Batcher(max_batch_size=2, timeout_s=10.0, threads=1)
    same = [{"x": np.ones((1, 2), np.float32)}, {"x": np.ones((1, 2), np.float32)}]
    _gather(batcher, servable, same)  # would take 10 s if it waited for the timeout
    assert servable.batches == [2]
    servable.batches.clear()
    batcher = Batcher(max_batch_size=8, timeout_s=0.05, threads=1)
    mixed = [{"x": np.ones((1, 2), np.float32)}, {"x": np.ones((1, 3), np.float32)}]
    results = _gather(batcher, servable, mixed)
    assert sorted(servable.batches) == [1, 1]
    assert [r["y"].shape for r in results] == [(1, 2), (1, 3)]


def test_without_a_timeout_requests_run_at_once_and_batch_while_the_threads_are_busy():
    gate = threading.Event()
    servable, batcher = Doubler(gate), Batcher(max_batch_size=32, timeout_s=0.0, threads=1)

    async def main():
        first = asyncio.ensure_future(batcher.run(servable, "s", {"x": np.ones((1, 2), np.float32)}))
        # the first runs alone at once (the thread is free); wait until it is running
        assert await asyncio.get_running_loop().run_in_executor(None, servable.started.wait, 60)
        rest = [
            asyncio.ensure_future(batcher.run(servable, "s", {"x": np.full((1, 2), i, np.float32)})) for i in range(3)
        ]
        await asyncio.sleep(0)  # one turn of the loop: the three queue up behind the running batch
        gate.set()
        return await asyncio.gather(first, *rest)

    results = asyncio.run(main())
    assert servable.batches == [1, 3]
    assert [float(r["y"][0, 0]) for r in results] == [2.0, 0.0, 2.0, 4.0]
    batcher.close()
