"""The process's one reader of the change log, and the fan-out to its subscribers.

One LISTEN connection, on the direct URL (a transaction-mode pooler cannot carry LISTEN),
wakes the hub; the log is the truth. Each wake-up reads the new changes once, over a
pooled connection borrowed for one statement, and hands them to every subscriber they
concern: database work does not grow with the number of subscribers. While LISTEN is down
(Neon closes an idle compute's connections) the hub polls, and reconnects with backoff.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from api.catalog.describe import Filter, Op
from api.live.cursors import Position
from api.live.log import Change, Window, current, read_window
from api.live.render import NodeQuery
from api.live.snapshots import Snapshot
from api.live.subscriber import DELETED, Delivery, Subscriber

log = logging.getLogger(__name__)

CHANNEL = "catalog_changes"  # the triggers' NOTIFY (api.db.change_log)
EXACT = (Op.EQUALS, Op.EQUALS_IGNORING_CASE)

Connect = Callable[[], Awaitable[asyncpg.Connection]]
Borrow = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
Render = Callable[[dict[NodeQuery, set[int]]], Awaitable[dict[tuple[NodeQuery, int], Any]]]


def _exact_key(condition: Filter, value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class Subscribers:
    """One entity's subscribers, found by an exact condition when they have one: a change
    to a book of author 7 looks at author 7's subscribers, not at all of them."""

    def __init__(self) -> None:
        self.exact: dict[Filter, dict[Any, set[Subscriber]]] = {}
        self.others: set[Subscriber] = set()
        self.count = 0

    def add(self, subscriber: Subscriber) -> None:
        self.count += 1
        for condition, value in subscriber.conditions:
            if condition.op in EXACT:
                bucket = self.exact.setdefault(condition, {})
                bucket.setdefault(_exact_key(condition, value), set()).add(subscriber)
                return
        self.others.add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber in self.others:
            self.others.discard(subscriber)
            self.count -= 1
            return
        for condition, value in subscriber.conditions:
            if condition.op in EXACT:
                bucket = self.exact.get(condition, {}).get(_exact_key(condition, value))
                if bucket is not None and subscriber in bucket:
                    bucket.discard(subscriber)
                    self.count -= 1
                return

    def __len__(self) -> int:
        return self.count

    def candidates(self, change: Change) -> set[Subscriber]:
        found = set(self.others)
        for condition, buckets in self.exact.items():
            column = condition.field.column.key
            for values in (change.old, change.new):
                if values is not None and values.get(column) is not None:
                    found |= buckets.get(_exact_key(condition, values[column]), set())
        return found


@dataclass(eq=False)
class Hub:
    borrow: Borrow
    render: Render
    listen: Connect | None
    poll_seconds: float = 1.0
    idle_poll_seconds: float = 30.0  # a safety read while LISTEN is up
    page: int = 1000
    position: Snapshot | None = field(default=None, init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    by_entity: dict[str, Subscribers] = field(default_factory=dict, init=False)
    listening: bool = field(default=False, init=False)
    listen_pid: int | None = field(default=None, init=False)  # its backend, for operators
    wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    reads: int = field(default=0, init=False)  # windows read: work, for the tests
    _tasks: list["asyncio.Task[None]"] = field(default_factory=list, init=False)

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_entity.values())

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._follow())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def register(self, subscriber: Subscriber) -> Snapshot:
        """Add it between two windows; returns the position its live events start after."""
        async with self.lock:
            if self.position is None:
                async with self.borrow() as connection:
                    self.position = await current(connection)
            self.by_entity.setdefault(subscriber.entity.name, Subscribers()).add(subscriber)
            return self.position

    def remove(self, subscriber: Subscriber) -> None:
        subscribers = self.by_entity.get(subscriber.entity.name)
        if subscribers is not None:
            subscribers.remove(subscriber)

    def subscribers(self) -> list[Subscriber]:
        every: set[Subscriber] = set()
        for subscribers in self.by_entity.values():
            every |= subscribers.others
            for buckets in subscribers.exact.values():
                for bucket in buckets.values():
                    every |= bucket
        return list(every)

    async def advance(self) -> None:
        """Read what is new, a page at a time, and hand it out; the position moves only once
        a window has been delivered whole (a failure reads it again)."""
        async with self.lock:
            if self.position is None:
                async with self.borrow() as connection:
                    self.position = await current(connection)
                return
            entities = [name for name, subscribers in self.by_entity.items() if subscribers]
            if not entities:  # nobody to tell: move on without reading what changed
                async with self.borrow() as connection:
                    self.position = await current(connection)
                return
            position = Position(self.position)
            while True:
                async with self.borrow() as connection:
                    window = await read_window(connection, position, self.page, entities)
                self.reads += 1
                await self.dispatch(window)
                if window.complete:
                    self.position = window.end
                    return
                position = Position(position.seen, window.end, window.changes[-1].id)

    async def dispatch(self, window: Window) -> None:
        matched: list[tuple[Subscriber, Change, str]] = []
        for change in window.changes:
            subscribers = self.by_entity.get(change.entity)
            if subscribers:
                for subscriber in subscribers.candidates(change):
                    kind = subscriber.kind(change)
                    if kind is not None:
                        matched.append((subscriber, change, kind))
        for subscriber, delivery in await self.deliveries(window, matched):
            subscriber.offer(delivery)

    async def deliveries(
        self, window: Window, matched: list[tuple[Subscriber, Change, str]]
    ) -> list[tuple[Subscriber, Delivery]]:
        """Each matched change as a delivery, its nodes rendered once per selection."""
        needed: dict[NodeQuery, set[int]] = {}
        for subscriber, change, kind in matched:
            if kind != DELETED:
                for query in subscriber.shape.nodes.values():
                    needed.setdefault(query, set()).add(change.row_id)
        rendered = await self.render(needed) if needed else {}
        made: dict[tuple[int, str], Delivery] = {}
        out = []
        for subscriber, change, kind in matched:
            delivery = made.get((change.id, kind))
            if delivery is None:
                delivery = Delivery(change, kind, window.start, window.end, rendered)
                made[(change.id, kind)] = delivery
            out.append((subscriber, delivery))
        return out

    async def backlog(
        self, subscriber: Subscriber, since: Position, until: Snapshot
    ) -> AsyncIterator[list[Delivery]]:
        """What `subscriber` missed from `since` up to `until` (where its live events start),
        a page at a time: first the rest of a window it stopped inside, then the rest."""
        steps = []
        if since.upto is not None:
            steps.append(since)
            steps.append(Position(since.upto, until, 0))
        else:
            steps.append(Position(since.seen, until, 0))
        for position in steps:
            while True:
                async with self.borrow() as connection:
                    window = await read_window(
                        connection, position, self.page, [subscriber.entity.name]
                    )
                matched = [
                    (subscriber, change, kind)
                    for change in window.changes
                    if change.entity == subscriber.entity.name
                    and (kind := subscriber.kind(change)) is not None
                ]
                yield [delivery for _, delivery in await self.deliveries(window, matched)]
                if window.complete:
                    break
                position = Position(position.seen, window.end, window.changes[-1].id)

    async def _follow(self) -> None:
        """Read on every wake-up, and at an interval: short while LISTEN is down."""
        while True:
            timeout = self.idle_poll_seconds if self.listening else self.poll_seconds
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # comes as the event is set, and the loop would go on after stop().
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self.advance()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database away: the next round reads it again
                log.warning("reading the change log failed: %r", error)
                await asyncio.sleep(self.poll_seconds)

    async def _connect(self) -> asyncpg.Connection:
        """A new LISTEN connection; one cancelled halfway is still closed cleanly."""
        assert self.listen is not None
        connecting = asyncio.ensure_future(self.listen())
        try:
            return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                (await connecting).terminate()
            raise

    async def _listen(self) -> None:
        """Hold the LISTEN connection; on loss, reconnect with backoff (polling meanwhile)."""
        if self.listen is None:
            return
        delay = 0.5
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await self._connect()
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, gone=lost: gone.set())
                await connection.add_listener(CHANNEL, lambda *_: self.wake.set())
                self.listening = True
                self.listen_pid = connection.get_server_pid()
                delay = 0.5
                self.wake.set()  # catch up on what came while it was away
                while not lost.is_set() and not connection.is_closed():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await lost.wait()
                    if not lost.is_set():  # a dead socket tells nobody: ask
                        await connection.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                if connection is not None:
                    connection.terminate()  # nothing in flight worth a goodbye
                raise
            except Exception as error:
                log.warning("the LISTEN connection is down (%r); polling until it is back", error)
            self.listening = False
            self.wake.set()
            if connection is not None and not connection.is_closed():
                connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
