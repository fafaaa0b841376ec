"""Admission control: how many bytes of decoded pixels the server lets be in flight at once.

Why: every image under the model's pixel budget is safe alone, but decoding is what takes memory
(up to 24 bytes a pixel, components/common/decoding_budget.py) and requests batch together, so
twenty concurrent 12 MP photos would decode 6 GB at once. A request reserves its images' decoded
bytes before it is queued for a batch and releases them when answered; one that does not fit waits
(in arrival order) until earlier ones finish. A request that could never fit (more than the whole
budget on its own) is refused with InvalidArgument, telling the client to send fewer images.
"""

import asyncio
import collections
import contextlib

from server.errors import InvalidArgument


class DecodingBudget:
    """At most `limit` bytes reserved at once; waiters are served first come, first served."""

    def __init__(self, limit: int):
        self.limit, self.in_use = limit, 0
        self._waiting: collections.deque = collections.deque()  # (bytes, future)

    @contextlib.asynccontextmanager
    async def reserve(self, nbytes: int):
        if nbytes > self.limit:
            raise InvalidArgument(
                f"the request's images decode to {nbytes:,} bytes, over this server's budget of "
                f"{self.limit:,} bytes for decoding at once (--max_decoding_bytes); send fewer "
                "or smaller images per request"
            )
        if self._waiting or self.in_use + nbytes > self.limit:
            future = asyncio.get_running_loop().create_future()
            self._waiting.append((nbytes, future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():  # admitted just as it was cancelled: give it back
                    self._release(nbytes)
                else:
                    self._waiting.remove((nbytes, future))
                    self._admit()
                raise
        else:
            self.in_use += nbytes
        try:
            yield
        finally:
            self._release(nbytes)

    def _release(self, nbytes: int) -> None:
        self.in_use -= nbytes
        self._admit()

    def _admit(self) -> None:
        while self._waiting and self.in_use + self._waiting[0][0] <= self.limit:
            nbytes, future = self._waiting.popleft()
            self.in_use += nbytes
            future.set_result(None)
