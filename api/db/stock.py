"""Open connections for a pool whose admission is decided elsewhere (`pipeline.admission.Gate`).

asyncpg's own pool queues its callers, and on every hand-back starts a task, arms a timer for
the connection's idle lifetime and runs a reset: for a one-statement read that is a large
part of the request's CPU. In front of the planner's connections the gate already decides how
many are out and in what order callers get them, and a planned statement leaves nothing to
reset (autocommit, no cursor, no setting). What remains is a stack of idle connections:

- taken most recent first, so the fewest stay warm; one the server closed is dropped, and a
  new one opened in its place;
- given back as it is, unless the statement did not finish (a timeout or a cancellation may
  leave the protocol mid-command) or the connection closed or sits in a transaction: then it
  is closed, and the next caller opens another;
- closed when idle longer than `idle_lifetime`, by one timer for the whole stack.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class StockClosed(asyncpg.InterfaceError):
    """The stock was closed (the process is stopping): no connection is handed out."""


class ConnectionStock:
    def __init__(self, connect: Connect, idle_lifetime: float | None = None) -> None:
        self._connect = connect
        self.idle_lifetime = idle_lifetime or None
        self._idle: list[tuple[asyncpg.Connection, float]] = []  # with when each came back
        self._open = 0  # idle or out
        self._closed = False
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()  # idle ones being closed politely

    def get_size(self) -> int:
        """Connections open, idle or out (as asyncpg's pool names it)."""
        return self._open

    def get_idle_size(self) -> int:
        return len(self._idle)

    async def take(self) -> asyncpg.Connection:
        idle = self._idle
        while idle:
            connection, _ = idle.pop()
            if not connection.is_closed():
                return connection
            self._open -= 1
        if self._closed:
            raise StockClosed("the connection stock is closed")
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            raise

    def give_back(self, connection: asyncpg.Connection, finished: bool) -> None:
        """`finished`: the last command on it ran to its end (an error from the server is an
        end; a timeout or a cancellation is not)."""
        if not finished or self._closed or connection.is_closed() or connection.is_in_transaction():
            self._open -= 1
            connection.terminate()
            return
        loop = asyncio.get_running_loop()
        self._idle.append((connection, loop.time()))
        if self._sweep_timer is None and self.idle_lifetime is not None:
            self._sweep_timer = loop.call_later(self.idle_lifetime, self._sweep)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection for the block, for callers outside the hot path."""
        connection = await self.take()
        finished = False
        try:
            yield connection
            finished = True
        except asyncpg.PostgresError:
            finished = True
            raise
        finally:
            self.give_back(connection, finished)

    def _sweep(self) -> None:
        """Close the connections idle past their lifetime; come back for the next one."""
        self._sweep_timer = None
        lifetime = self.idle_lifetime
        if lifetime is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        kept = []
        for connection, since in self._idle:
            if now - since >= lifetime:
                self._open -= 1
                closing = loop.create_task(connection.close(timeout=5))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            else:
                kept.append((connection, since))
        self._idle = kept
        if kept:
            oldest = min(since for _, since in kept)
            self._sweep_timer = loop.call_later(max(0.0, oldest + lifetime - now), self._sweep)

    async def close(self) -> None:
        """Close the idle connections now; those still out are closed as they come back."""
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        closing = [c.close(timeout=5) for c, _ in idle]
        await asyncio.gather(*closing, *self._closing, return_exceptions=True)
