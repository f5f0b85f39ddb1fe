"""Admission to a connection pool: a bounded queue in front of it, and one deadline.

Without a bound, a burst of expensive requests queues without limit: every later request
waits behind them, answers after tens of seconds, and nothing tells a client or a load
balancer to back off. Here a request waits for a connection only while fewer than
`queue_limit` others wait, and only until its deadline; otherwise it is shed at once with
SERVER_BUSY and a Retry-After, and nothing runs. The wait comes out of the same deadline as
the statement that follows, so a request's whole database time has one bound.
"""

import asyncio
from types import TracebackType


class ServerBusy(Exception):
    """The pool's queue is full, or the request's deadline passed while it waited."""

    def __init__(self, pool: str, reason: str) -> None:
        super().__init__(f"{pool}: {reason}")
        self.pool = pool
        self.reason = reason


class Gate:
    """As many requests in as the pool has connections, in arrival order; a bounded queue."""

    def __init__(self, name: str, size: int, queue_limit: int) -> None:
        self.name = name
        self.size = size
        self.queue_limit = queue_limit
        self._semaphore = asyncio.Semaphore(size)
        self.waiting = 0
        self.inside = 0
        self.shed = 0  # requests shed since start, for the metrics and the tests

    def slot(self, patience: float | None) -> "Slot":
        """Hold one of the pool's places for the block; ServerBusy when none comes in time."""
        return Slot(self, patience)

    async def enter(self, patience: float | None) -> None:
        if not self._semaphore.locked():  # a place is free: taken at once, no timer to set
            await self._semaphore.acquire()
        else:
            await self._wait(patience)
        self.inside += 1

    async def _wait(self, patience: float | None) -> None:
        if self.waiting >= self.queue_limit:
            self.shed += 1
            raise ServerBusy(self.name, "queue full")
        self.waiting += 1
        try:
            async with asyncio.timeout(patience):
                await self._semaphore.acquire()
        except TimeoutError:
            self.shed += 1
            raise ServerBusy(self.name, "no connection before the deadline") from None
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self.inside -= 1
        self._semaphore.release()

    @property
    def saturated(self) -> bool:
        return self._semaphore.locked()


class Slot:
    """`async with gate.slot(patience)`: a class, not a generator, as one is made per request."""

    __slots__ = ("gate", "patience")

    def __init__(self, gate: Gate, patience: float | None) -> None:
        self.gate = gate
        self.patience = patience

    async def __aenter__(self) -> None:
        await self.gate.enter(self.patience)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.gate.leave()
