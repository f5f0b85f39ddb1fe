"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

import math
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from api.auth.service_tokens import bearer_token, token_matches
from api.db.reads import PlannerPool
from api.db.replicas import ReadRouter, Replica
from api.pipeline.admission import Gate


class LiveService(Protocol):
    """What the metrics read off the live service (api.live.service)."""

    opened: int
    renders: int
    count_refusal: Callable[[str], None]

    @property
    def subscriptions(self) -> int: ...

    @property
    def listening(self) -> bool: ...


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Operation and client names come from clients: bound the label values so nobody can flood
# the registry.
MAX_OPERATION_LABELS = 200
MAX_OPERATION_NAME = 64
MAX_CLIENT_LABELS = 20
MAX_VERSION_LABELS = 5  # per client
MAX_CLIENT_LABEL = 64
OTHER = "other"
UNKNOWN = "unknown"
NOT_IN_A_LABEL = re.compile(r"[^A-Za-z0-9 ._:/@+-]")


def _lag_seconds(replica: Replica) -> float:
    return math.nan if replica.lag_seconds is None else replica.lag_seconds


def _lag_bytes(replica: Replica) -> float:
    return math.nan if replica.lag_bytes is None else float(replica.lag_bytes)


def _usable(replica: Replica) -> float:
    return float(replica.usable(time.monotonic()))


# Gauges read when /metrics is scraped, one series per admission gate or per read replica:
# (name, help, what the series reads off its gate or replica).
GATE_GAUGES: tuple[tuple[str, str, Callable[[Gate], float]], ...] = (
    (
        "db_queue_waiting",
        "Requests waiting for a database connection, per pool's admission gate.",
        lambda gate: gate.waiting,
    ),
    (
        "db_queue_shed",
        "Requests shed with SERVER_BUSY since start (queue full or deadline passed).",
        lambda gate: gate.shed,
    ),
)
# The live service's state, read when /metrics is scraped.
LIVE_GAUGES: tuple[tuple[str, str, Callable[[LiveService], float]], ...] = (
    ("live_subscriptions", "Subscriptions open in this process.", lambda live: live.subscriptions),
    (
        "live_subscriptions_opened",
        "Subscriptions opened since start (each through the front door).",
        lambda live: live.opened,
    ),
    (
        "live_listening",
        "1 while the change log's LISTEN connection is up; 0 while it polls.",
        lambda live: float(live.listening),
    ),
    (
        "live_renders",
        "Queries sent to render events' nodes since start (one per batch and selection).",
        lambda live: live.renders,
    ),
)
REPLICA_GAUGES: tuple[tuple[str, str, Callable[[Replica], float]], ...] = (
    (
        "db_replica_lag_seconds",
        "How long ago the oldest primary WAL position a read replica has not replayed was "
        "seen (0: caught up; NaN: not read yet).",
        _lag_seconds,
    ),
    (
        "db_replica_lag_bytes",
        "WAL bytes a read replica is behind the primary (NaN: not read yet).",
        _lag_bytes,
    ),
    (
        "db_replica_usable",
        "1 when reads may go to the replica: up, read lately, within DATABASE_READ_MAX_LAG.",
        _usable,
    ),
)


class BoundedLabels:
    """Label values as clients send them, first come first kept: past `limit` distinct
    values, every new one is "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.kept:
            return value
        if len(self.kept) >= self.limit:
            return OTHER
        self.kept.add(value)
        return value


def client_label(value: str | None) -> str:
    """A client's name or version as a label: printable, short, never empty."""
    if not value:
        return UNKNOWN
    return NOT_IN_A_LABEL.sub("_", value[:MAX_CLIENT_LABEL])


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._operations = BoundedLabels(MAX_OPERATION_LABELS)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._client_names = BoundedLabels(MAX_CLIENT_LABELS)
        self._client_versions: dict[str, BoundedLabels] = {}
        self._client_children: dict[tuple[str, str], Any] = {}
        self.requests = Counter(
            "graphql_requests",
            "GraphQL requests by operation name and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graphql_request_duration_seconds",
            "Time to answer a GraphQL request.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "graphql_http_rejections",
            "Requests to /graphql refused before any operation ran, by status and reason.",
            ["status", "reason"],
            registry=self.registry,
        )
        self.client_requests = Counter(
            "graphql_client_requests",
            "Requests to /graphql by client name and version (apollographql-client-name and"
            " -version, or graphql-client-name and -version); the first 20 names and 5"
            " versions of each get their own label, later ones are counted as other.",
            ["client", "version"],
            registry=self.registry,
        )
        self.statements = Counter(
            "db_statements",
            "SQL statements sent while answering GraphQL requests.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "db_pool_connections_in_use",
            "Database connections in use: the ORM's pool, and the query planner's.",
            ["pool"],
            registry=self.registry,
        )
        self.gate_gauges = [
            (Gauge(name, text, ["pool"], registry=self.registry), read)
            for name, text, read in GATE_GAUGES
        ]
        self.replica_gauges = [
            (Gauge(name, text, ["replica"], registry=self.registry), read)
            for name, text, read in REPLICA_GAUGES
        ]

    def watch_replicas(self, router: ReadRouter) -> None:
        for replica in router.replicas:
            for gauge, read in self.replica_gauges:
                gauge.labels(replica=replica.name).set_function(partial(read, replica))
            self.pool_in_use.labels(pool=f"replica {replica.name}").set_function(
                _in_use(replica.endpoint.pool)
            )

    def watch_pools(self, engine: AsyncEngine, planner_pool: PlannerPool) -> None:
        orm = engine.sync_engine.pool
        self.pool_in_use.labels(pool="orm").set_function(
            lambda: float(getattr(orm, "checkedout", lambda: 0)())
        )
        self.pool_in_use.labels(pool="planner").set_function(_in_use(planner_pool))

    def watch_live(self, live: LiveService) -> None:
        for name, text, read in LIVE_GAUGES:
            Gauge(name, text, registry=self.registry).set_function(partial(read, live))
        refused = Counter(
            "live_subscriptions_refused",
            "Subscriptions refused as they opened (WebSocket or SSE), by error code.",
            ["code"],
            registry=self.registry,
        )
        live.count_refusal = lambda code: refused.labels(code=code).inc()

    def watch_gates(self, gates: dict[str, Gate]) -> None:
        for name, gate in gates.items():
            for gauge, read in self.gate_gauges:
                gauge.labels(pool=name).set_function(partial(read, gate))

    def _label(self, operation: str) -> str:
        return self._operations(operation[:MAX_OPERATION_NAME])

    def count_client(self, name: str | None, version: str | None) -> None:
        key = (client_label(name), client_label(version))
        child = self._client_children.get(key)
        if child is None:
            label = self._client_names(key[0])
            if label == OTHER:
                version = OTHER
            else:
                versions = self._client_versions.setdefault(
                    label, BoundedLabels(MAX_VERSION_LABELS)
                )
                version = versions(key[1])
            child = self.client_requests.labels(client=label, version=version)
            if len(self._client_children) < MAX_CLIENT_LABELS * MAX_VERSION_LABELS * 4:
                self._client_children[key] = child
        child.inc()

    def observe(self, *, operation: str, outcome: str, seconds: float, statements: int) -> None:
        key = (operation, outcome)
        children = self._children.get(key)
        if children is None:  # labels() locks and looks up; remember the pair per operation
            label = self._label(operation)
            children = (
                self.requests.labels(operation=label, outcome=outcome),
                self.latency.labels(operation=label),
            )
            if len(self._children) < MAX_OPERATION_LABELS * 4:
                self._children[key] = children
        self.statements.inc(statements)
        children[0].inc()
        children[1].observe(seconds)

    def reject(self, *, status: int, reason: str) -> None:
        self.rejections.labels(status=str(status), reason=reason).inc()

    async def endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def guarded_endpoint(
        self, *, token: str | None, production: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        """/metrics behind `Authorization: Bearer <METRICS_TOKEN>` when a token is set.

        Production without a token answers 404, as if there were no /metrics: the numbers
        show traffic and operation names, and no token means nobody was meant to read them.
        """

        async def guarded(request: Request) -> Response:
            if token is None:
                if production:
                    return PlainTextResponse("Not Found", status_code=404)
                return await self.endpoint(request)
            offered = bearer_token(request.headers.get("authorization"))
            if offered is None or not token_matches(offered, [token]):
                return PlainTextResponse(
                    "Send Authorization: Bearer <METRICS_TOKEN>",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
            return await self.endpoint(request)

        return guarded


def _in_use(pool: PlannerPool) -> Callable[[], float]:
    return lambda: float(pool.in_use())
