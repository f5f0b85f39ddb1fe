"""Admission to a connection pool: a bounded queue in front of it, and one deadline.

Without a bound, a burst of expensive requests queues without limit: every later request
waits behind them, answers after tens of seconds, and nothing tells a client or a load
balancer to back off. Here a request waits for a connection only while fewer than
`queue_limit` others wait, and only until its deadline; otherwise it is shed at once with
SERVER_BUSY and a Retry-After, and nothing runs. The wait comes out of the same deadline as
the statement that follows, so a request's whole database time has one bound.
"""

import asyncio
from collections import deque
from types import TracebackType


class ServerBusy(Exception):
    """The pool's queue is full, or the request's deadline passed while it waited."""

    def __init__(self, pool: str, reason: str) -> None:
        super().__init__(f"{pool}: {reason}")
        self.pool = pool
        self.reason = reason


class Gate:
    """As many requests in as the pool has connections, in arrival order; a bounded queue.

    A request that finds a place free takes it at once. Otherwise it waits in a queue of its
    own futures, handed a place directly as one comes back, so nobody overtakes it. Waiters'
    deadlines share one timer, set for the earliest: a waiter costs a future, not a timer of
    its own (which, at thousands of requests a second, is a visible share of the CPU).
    """

    def __init__(self, name: str, size: int, queue_limit: int) -> None:
        self.name = name
        self.size = size
        self.queue_limit = queue_limit
        self.waiting = 0
        self.inside = 0
        self.shed = 0  # requests shed since start, for the metrics and the tests
        self._free = size
        self._waiters: deque[tuple[asyncio.Future[None], float | None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def slot(self, patience: float | None) -> "Slot":
        """Hold one of the pool's places for the block; ServerBusy when none comes in time."""
        return Slot(self, patience)

    async def enter(self, patience: float | None) -> None:
        if self._free > 0:  # never while a live waiter waits: it would have been handed it
            self._free -= 1
        else:
            await self._wait(patience)
        self.inside += 1

    async def _wait(self, patience: float | None) -> None:
        if self.waiting >= self.queue_limit:
            self.shed += 1
            raise ServerBusy(self.name, "queue full")
        loop = asyncio.get_running_loop()
        place: asyncio.Future[None] = loop.create_future()
        deadline = None if patience is None else loop.time() + patience
        self._waiters.append((place, deadline))
        if deadline is not None and (self._timer is None or deadline < self._timer.when()):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)
        self.waiting += 1
        try:
            await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled() and place.exception() is None:
                self._hand_over()  # handed a place it will not use: pass it on
            raise
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self.inside -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """A place came back: to the first live waiter, else to the free ones."""
        waiters = self._waiters
        while waiters:
            place, _ = waiters.popleft()
            if not place.done():
                place.set_result(None)
                return
        self._free += 1

    def _expire(self) -> None:
        """Shed the waiters whose deadline has passed; set the timer for the next one."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        kept: deque[tuple[asyncio.Future[None], float | None]] = deque()
        earliest: float | None = None
        for place, deadline in self._waiters:
            if place.done():
                continue
            if deadline is not None and deadline <= now:
                self.shed += 1
                place.set_exception(ServerBusy(self.name, "no connection before the deadline"))
                continue
            kept.append((place, deadline))
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        self._waiters = kept
        if earliest is not None:
            self._timer = loop.call_at(earliest, self._expire)

    @property
    def saturated(self) -> bool:
        return self._free == 0


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
