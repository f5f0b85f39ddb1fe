"""One subscription's side of the fan-out: its filter, its queue, its cursor.

The hub offers it each change of its entity; it says which kind of event that is for its
filter (or none), and queues what it accepts. A queue that fills up ends the subscription
as a slow consumer: the client resumes from its last cursor, and the hub never waits.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from api.catalog.describe import Entity, Filter
from api.catalog.ids import encode_id
from api.live.contract import Ended
from api.live.cursors import Position
from api.live.log import Change
from api.live.render import EventShape, NodeQuery
from api.live.snapshots import Snapshot

CREATED, UPDATED, DELETED = "CREATED", "UPDATED", "DELETED"


@dataclass
class Delivery:
    """A change as an event of one kind, from the window `start → end`, with the nodes
    rendered for it; payloads are built once per shape and cursor, for every subscriber."""

    change: Change
    kind: str
    start: Snapshot
    end: Snapshot
    rendered: dict[tuple[NodeQuery, int], Any]
    payloads: dict[tuple[int, str], bytes] = field(default_factory=dict)

    def payload(self, shape: EventShape, cursor: str) -> bytes:
        key = (id(shape), cursor)
        body = self.payloads.get(key)
        if body is None:
            change = self.change
            nodes = (
                {}
                if self.kind == DELETED
                else {k: self.rendered.get((q, change.row_id)) for k, q in shape.nodes.items()}
            )
            body = shape.payload(cursor, self.kind, encode_id(change.entity, change.row_id), nodes)
            self.payloads[key] = body
        return body


def kind_for(conditions: list[tuple[Filter, Any]], change: Change) -> str | None:
    """The event `change` is for a filter: moving into it is CREATED, out of it DELETED."""
    if not conditions:
        return change.kind

    def member(values: dict[str, Any] | None) -> bool:
        return values is not None and all(
            f.matches(value, values.get(f.field.column.key)) for f, value in conditions
        )

    was, now = member(change.old), member(change.new)
    if was and now:
        return UPDATED
    if now:
        return CREATED
    if was:
        return DELETED
    return None


@dataclass(eq=False)
class Subscriber:
    entity: Entity
    conditions: list[tuple[Filter, Any]]
    shape: EventShape
    base: Snapshot  # what it had received when it last moved to a new window
    queue_size: int
    queue: asyncio.Queue[Delivery | Ended] = field(init=False)
    ended: Ended | None = None
    on_close: Any = None  # called once, when it stops
    # What it missed before its live events, read a page at a time as it is consumed.
    backlog: AsyncIterator[list[Delivery]] | None = None
    pending: deque[Delivery] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue()

    def kind(self, change: Change) -> str | None:
        return kind_for(self.conditions, change)

    def offer(self, delivery: Delivery) -> None:
        """Queue it, or end as a slow consumer when the queue is full; never waits."""
        if self.ended is not None:
            return
        if self.queue.qsize() >= self.queue_size:
            self.stop(Ended.SLOW_CONSUMER)
            return
        self.queue.put_nowait(delivery)

    def stop(self, why: Ended) -> None:
        """End it: what is queued is dropped; the client resumes from its last cursor."""
        if self.ended is not None:
            return
        self.ended = why
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(why)
        if self.on_close is not None:
            self.on_close(self)

    async def next(self) -> bytes | None:
        while True:
            if self.ended is not None:
                return None
            if self.pending:
                item: Delivery | Ended = self.pending.popleft()
            elif self.backlog is not None:
                page = await anext(self.backlog, None)
                if page is None:
                    self.backlog = None
                else:
                    self.pending.extend(page)
                continue
            else:
                item = await self.queue.get()
            if isinstance(item, Ended):
                self.queue.put_nowait(item)  # every later call says the same
                return None
            change = item.change
            # Everything visible at the window's start was delivered before it (or was
            # not for this filter): the cursor moves up to it.
            if item.start is not self.base:
                if item.start.covers(self.base):
                    self.base = item.start
                elif not self.base.covers(item.start):
                    self.base = self.base.union(item.start)
            if self.base.visible(change.xid):  # resumed past it on another process
                continue
            cursor = Position(self.base, item.end, change.id).encode()
            return item.payload(self.shape, cursor)

    async def close(self) -> None:
        self.stop(Ended.COMPLETE)
