"""The live service: subscriptions opened through the front door, fed by the hub.

`open` takes a subscribe request as the transports receive it and runs it past the same
checks as any query (document, operation, credentials, list caps, cost), then reads what it
asks for: which entity, which filter, which cursor, which fields. What it cannot serve
exactly is refused when it opens, never half-served.
"""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from graphql import FieldNode, GraphQLError, OperationType, specified_rules
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.schema.schema import validate_document

from api.catalog.describe import Entity, Filter, InvalidFilter
from api.catalog.ids import encode_id
from api.db.replicas import ReadRouter
from api.db.stock import ConnectionStock
from api.graphql.planner.fastpath import serve_planned
from api.graphql.subscriptions import LIVE_FIELDS
from api.live.contract import Ended
from api.live.cursors import BadCursor, Position
from api.live.hub import Hub
from api.live.log import expired, purge
from api.live.render import (
    BUCKETS,
    MAX_BUCKET,
    EventShape,
    NodeQuery,
    Unsupported,
    collect,
    event_shape,
    selection_variables,
)
from api.live.snapshots import Snapshot
from api.live.subscriber import Subscriber
from api.observability.tracing import untraced
from api.pipeline.budget import TokenBucket
from api.pipeline.documents import Documents
from api.pipeline.door import FrontDoor
from api.pipeline.refusals import Refused, RequestCode
from api.settings import setting

log = logging.getLogger(__name__)
MAX_SHAPES = 10_000
SETTLE_EVERY = 1000
RENDER_DOCUMENT_BYTES = 4 * 1024 * 1024
RENDER_CACHE_BYTES = 32 * 1024 * 1024
NOTHING_SEEN = Snapshot(1, 1)  # replaced by the hub's position when it registers


def _bad_input(message: str, code: str = RequestCode.BAD_USER_INPUT.value) -> Refused:
    return Refused(
        RequestCode.BAD_USER_INPUT,
        message,
        errors=[{"message": message, "extensions": {"code": code}}],
    )


@dataclass(frozen=True)
class LiveOptions:
    """`settings.options(LiveOptions)` fills it."""

    max_subscriptions: int = setting("live_max_subscriptions")
    queue_size: int = setting("live_queue_size")
    retention_hours: float = setting("live_retention_hours")
    poll_seconds: float = setting("live_poll_seconds")


class LiveService:
    def __init__(
        self,
        door: FrontDoor,
        state: dict[str, Any],
        options: LiveOptions,
        listen: Callable[[], Awaitable[asyncpg.Connection]] | None,
        log_pool: ConnectionStock,
    ) -> None:
        """`log_pool`: the primary's, for the change log alone (a reader and the purge), so
        the hub never waits behind requests nor holds their connections."""
        self.door = door
        self.log_pool = log_pool
        self.state = state
        self.options = options
        self.primary_pool = state["primary_pool"]
        # Payloads read the primary: a replica may not have the row yet.
        self.primary_state = {**state, "reads": ReadRouter(state["reads"].primary, [])}
        self.hub = Hub(self._borrow, self.render, listen, poll_seconds=options.poll_seconds)
        self.shapes: dict[tuple[str, str | None, bytes], EventShape] = {}
        # The render queries are the server's own, made from selections the front door
        # already took (limits and cost included): checked by the spec's rules alone, so a
        # batch of lookups is not held to a client's alias limit.
        self.documents = Documents(
            door.schema.graphql_schema,
            specified_rules,
            validate=validate_document,
            tidy_errors=door.schema.process_errors,
            max_bytes=RENDER_DOCUMENT_BYTES,
            max_tokens=RENDER_DOCUMENT_BYTES,
            cache_bytes=RENDER_CACHE_BYTES,
            parse_budget=TokenBucket(float(RENDER_CACHE_BYTES), float(RENDER_CACHE_BYTES)),
        )
        self.opened = 0
        # Set by the metrics (api.observability.metrics.watch_live); a code each refusal.
        self.count_refusal: Callable[[str], None] = lambda code: None
        self._settled_at = 0  # subscriptions open when the collector last settled them
        self.renders = 0  # render queries sent: work, for the tests and the benchmark
        self._purger: asyncio.Task[None] | None = None

    def _settle(self) -> None:
        """Once a thousand more subscriptions are open than at the last look, move what the
        process holds out of the garbage collector's generations, as app.py does at start.
        Otherwise every full collection walks every subscription's state: at ten thousand
        subscriptions, pauses of 120-130 ms (W8 spread's p99 118 ms; 85 ms with this).
        A subscription's state holds no reference cycles: reference counting frees it when
        it ends, frozen or not."""
        if len(self.hub) >= self._settled_at + SETTLE_EVERY:
            self._settled_at = len(self.hub)
            gc.freeze()
        elif len(self.hub) < self._settled_at - SETTLE_EVERY:
            self._settled_at = len(self.hub)

    @property
    def subscriptions(self) -> int:
        return len(self.hub)

    @property
    def listening(self) -> bool:
        return self.hub.listening

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.log_pool.acquire() as connection:
            yield connection

    async def start(self) -> None:
        with untraced():  # the tasks it starts inherit it
            await self.hub.start()
            self._purger = asyncio.create_task(self._purge_periodically())

    async def stop(self) -> None:
        await self.shutdown()
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.hub.stop()

    async def shutdown(self) -> None:
        for subscriber in self.hub.subscribers():
            subscriber.stop(Ended.SHUTDOWN)

    async def open(self, request: dict[str, Any], authorization: str | None) -> Subscriber:
        """A subscription, or Refused; refusals are counted here, whichever transport asked
        (a WebSocket has no HTTP request for the request metrics to count)."""
        try:
            return await self._open(request, authorization)
        except Refused as refused:
            self.count_refusal(refused.code.value)
            raise

    async def _open(self, request: dict[str, Any], authorization: str | None) -> Subscriber:
        door = self.door
        parsed, operation, inputs, _ = await door.admit(request, authorization, "SUBSCRIBE")
        if operation.operation is not OperationType.SUBSCRIPTION:
            raise Refused(
                RequestCode.BAD_REQUEST,
                f"A {operation.operation.value} is answered over HTTP; only subscriptions here",
            )
        door.policy.check_cost(door.cost(parsed, operation, inputs))
        if len(self.hub) >= self.options.max_subscriptions:
            raise Refused(
                RequestCode.TOO_MANY_SUBSCRIPTIONS,
                "This server holds as many subscriptions as it may; retry shortly",
                headers={"Retry-After": "5"},
            )
        schema = door.schema.graphql_schema
        coerced = get_variable_values(schema, operation.variable_definitions or (), inputs)
        if isinstance(coerced, list):  # the variables did not coerce
            error: GraphQLError = coerced[0]
            raise _bad_input(error.message)
        subscription_type = schema.subscription_type
        assert subscription_type is not None
        roots = collect(operation.selection_set, "Subscription", parsed.fragments, coerced.coerced)
        if len(roots) != 1:
            raise _bad_input("A subscription selects exactly one field")
        ((root, *_),) = roots.values()
        entity = LIVE_FIELDS[root.name.value]
        arguments = get_argument_values(subscription_type.fields[root.name.value], root, coerced)
        conditions = self._conditions(entity, arguments.get("filter"))
        shape = self._shape(
            parsed.text, operation, parsed.fragments, root, entity, coerced.coerced, inputs
        )
        since = self._since(arguments.get("after"))
        if since is not None:
            async with self._borrow() as connection:
                if await expired(connection, since):
                    raise Refused(
                        RequestCode.CURSOR_EXPIRED,
                        "`after` is older than the change log keeps: read the list again, "
                        "then subscribe without `after`",
                    )
        subscriber = Subscriber(
            entity,
            conditions,
            shape,
            since.seen if since else NOTHING_SEEN,
            self.options.queue_size,
        )
        subscriber.on_close = self.hub.remove
        start = await self.hub.register(subscriber)
        if since is None:
            subscriber.base = start
        else:
            subscriber.backlog = self.hub.backlog(subscriber, since, start)
        self.opened += 1
        self._settle()
        return subscriber

    @staticmethod
    def _conditions(entity: Entity, given: dict[str, Any] | None) -> list[tuple[Filter, Any]]:
        conditions = []
        for condition in entity.filters:
            value = (given or {}).get(condition.name)
            if value is None:
                continue
            try:
                conditions.append((condition, condition.value(value)))
            except InvalidFilter as invalid:
                raise _bad_input(str(invalid), invalid.code) from None
        return conditions

    def _shape(
        self,
        text: str,
        operation: Any,
        fragments: dict[str, Any],
        root: FieldNode,
        entity: Entity,
        variables: dict[str, Any],
        inputs: dict[str, Any],
    ) -> EventShape:
        """Shared by every subscription with the same document and selection variables
        (their filters may differ): their events are rendered and encoded once."""
        name = operation.name.value if operation.name else None
        used = {v: inputs.get(v) for v in sorted(selection_variables(root, fragments))}
        key = (text, name, orjson.dumps(used))
        shape = self.shapes.get(key)
        if shape is None:
            try:
                shape = event_shape(
                    root,
                    f"{entity.name}Change",
                    entity.name,
                    operation,
                    fragments,
                    variables,
                    inputs,
                )
            except Unsupported as unsupported:
                raise _bad_input(str(unsupported)) from None
            if len(self.shapes) >= MAX_SHAPES:
                self.shapes.clear()
            self.shapes[key] = shape
        return shape

    @staticmethod
    def _since(after: str | None) -> Position | None:
        if after is None:
            return None
        try:
            return Position.decode(after)
        except BadCursor as bad:
            raise _bad_input(str(bad)) from None

    async def render(self, needed: dict[NodeQuery, set[int]]) -> dict[tuple[NodeQuery, int], Any]:
        """Every needed node, one query per selection and up to MAX_BUCKET rows."""
        chunks = []
        for query, row_ids in needed.items():
            ordered = sorted(row_ids)
            for start in range(0, len(ordered), MAX_BUCKET):
                chunks.append((query, ordered[start : start + MAX_BUCKET]))
        rendered: dict[tuple[NodeQuery, int], Any] = {}
        for part in await asyncio.gather(*(self._render(q, ids) for q, ids in chunks)):
            rendered.update(part)
        return rendered

    async def _render(
        self, query: NodeQuery, row_ids: list[int]
    ) -> dict[tuple[NodeQuery, int], Any]:
        self.renders += 1
        size = next(b for b in BUCKETS if b >= len(row_ids))
        padded = row_ids + [row_ids[-1]] * (size - len(row_ids))
        door = self.door
        try:
            parsed = self.documents.get(query.text(size), trusted=True)
        except Refused as refused:  # never expected; the events go out without their nodes
            log.error("a live render query was refused: %s", refused.message)
            return {(query, row_id): None for row_id in row_ids}
        operation = parsed.operation("LiveNodes")
        variables = query.variables([encode_id(query.type_name, i) for i in padded])
        body = None
        if door.plans is not None:
            prepared = door.plans.prepare(parsed, operation, variables)
            if prepared is not None:
                answer = await serve_planned(self.primary_pool, prepared)
                body = answer.body if answer is not None and answer.ok else None
        if body is None:
            result = await door.resolvers.execute(
                parsed, operation, variables, None, self.primary_state, True
            )
            body = result.body
        data = orjson.loads(body).get("data") or {}
        return {(query, row_id): data.get(f"n{i}") for i, row_id in enumerate(row_ids)}

    async def _purge_periodically(self, every_seconds: float = 600, batch: int = 5000) -> None:
        """A mark every round; the changes older than retention deleted in batches."""
        while True:
            try:
                async with self._borrow() as connection:
                    await purge(connection, self.options.retention_hours * 3600, batch)
            except Exception as error:  # the database away: the next round tries again
                log.info("purging the change log failed: %r", error)
            await asyncio.sleep(every_seconds)
