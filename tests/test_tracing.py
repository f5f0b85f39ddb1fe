"""Traces: nothing unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then, per request, an HTTP server
span, a GraphQL operation span and a span per SQL statement, in one trace, whichever executor
answers.

The app is built with an in-memory exporter in place of OTLP's, so the tests read the spans the
service would have sent.
"""

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.observability.shown_documents import MAX_DOCUMENT_CHARS, document_without_literals
from api.observability.tracing import OperationSpanScope, asyncpg_instrumentor, start_tracing
from tests.conftest import make_settings
from tests.factories import insert_authors

ENDPOINT = "http://127.0.0.1:4318"  # never contacted: the spans go to memory
BOOKS = (
    'query Books { authors(first: 2, filter: {country: "Nigeria"}) '
    "{ edges { node { name books(first: 3) { edges { node { title } } } } } } }"
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
# asyncpg's own methods, as imported (no app has patched them yet).
DRIVER_METHODS = [
    (owner, name, vars(owner)[name])
    for owner, name in [
        (asyncpg.Connection, "fetchval"),
        (asyncpg.prepared_stmt.PreparedStatement, "fetch"),
    ]
]


@dataclass
class Trace:
    """The spans of one request."""

    spans: list[ReadableSpan]

    def only(self, kind: SpanKind, name: str | None = None) -> ReadableSpan:
        found = [s for s in self.spans if s.kind is kind and name in (None, s.name)]
        assert len(found) == 1, [(s.name, s.kind) for s in self.spans]
        return found[0]

    @property
    def server(self) -> ReadableSpan:
        return self.only(SpanKind.SERVER)

    @property
    def operation(self) -> ReadableSpan:
        return self.only(SpanKind.INTERNAL)

    @property
    def statements(self) -> list[ReadableSpan]:
        return [s for s in self.spans if s.kind is SpanKind.CLIENT]


@dataclass
class Traced:
    http: httpx.AsyncClient
    exporter: InMemorySpanExporter
    app: Starlette

    async def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Trace:
        """The trace of one request that answered data without errors."""
        self.exporter.clear()
        response = await self.http.post("/graphql", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text
        return Trace(list(self.exporter.get_finished_spans()))


@asynccontextmanager
async def traced(database_url: str, **overrides: Any) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    settings = make_settings(database_url, otel_exporter_otlp_endpoint=ENDPOINT, **overrides)
    app = create_app(settings, span_exporter=exporter)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Traced(http, exporter, app)


def asyncpg_is_patched() -> bool:
    """Whether a method the planner or SQLAlchemy calls is no longer asyncpg's own."""
    return any(vars(owner)[name] is not original for owner, name, original in DRIVER_METHODS)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_request_is_one_trace_of_server_operation_and_statements(
    database_url: str, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 4, books_each=3)
    async with traced(database_url) as service:
        trace = await service.post({"query": BOOKS})

    server, operation = trace.server, trace.operation
    assert server.name == "POST /graphql"
    assert attributes(server)["http.route"] == "/graphql"
    assert server.parent is None
    assert operation.name == "query Books"
    assert operation.parent is not None
    assert operation.parent.span_id == server.context.span_id
    shown = attributes(operation)
    assert shown["graphql.operation.name"] == "Books"
    assert shown["graphql.operation.type"] == "query"
    assert shown["graphql.document"] == (
        "query Books { authors(first: ?, filter: { country: ? }) "
        "{ edges { node { name books(first: ?) { edges { node { title } } } } } } }"
    )
    assert trace.statements, "no statement span"
    for statement in trace.statements:
        assert attributes(statement)["db.system"] == "postgresql"
        assert statement.parent is not None
        assert statement.parent.span_id == operation.context.span_id
    assert {s.context.trace_id for s in trace.spans} == {server.context.trace_id}


async def test_an_incoming_traceparent_is_continued(database_url: str) -> None:
    async with traced(database_url) as service:
        trace = await service.post(
            {"query": "{ authors(first: 1) { edges { node { id } } } }"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
    server = trace.server
    assert server.parent is not None
    assert server.parent.is_remote
    assert f"{server.parent.span_id:016x}" == PARENT_ID
    assert {f"{s.context.trace_id:032x}" for s in trace.spans} == {TRACE_ID}
    assert trace.operation.name == "query"  # anonymous: the operation type alone
    assert "graphql.operation.name" not in attributes(trace.operation)


async def test_planned_and_resolved_requests_look_alike(
    database_url: str, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 4, books_each=3)
    async with traced(database_url) as planner:
        planned = await planner.post({"query": BOOKS})
        await planner.post({"query": BOOKS})  # seen twice: kept for the planner's shortcut
        repeated = await planner.post({"query": BOOKS})  # byte for byte: the shortcut
    async with traced(database_url, query_planner=False) as resolvers:
        resolved = await resolvers.post({"query": BOOKS})

    for trace in (repeated, resolved):
        assert trace.operation.name == planned.operation.name
        assert attributes(trace.operation) == attributes(planned.operation)
        assert trace.server.name == planned.server.name
    # The planner answers in one statement; the resolvers read authors, then their books.
    assert len(planned.statements) == len(repeated.statements) == 1
    assert len(resolved.statements) > 1
    for trace in (planned, repeated, resolved):
        for statement in trace.statements:
            assert attributes(statement)["db.system"] == "postgresql"
            assert statement.parent is not None
            assert statement.parent.span_id == trace.operation.context.span_id


async def test_a_get_request_is_traced_like_a_post(database_url: str) -> None:
    async with traced(database_url) as service:
        posted = await service.post({"query": BOOKS})
        service.exporter.clear()
        response = await service.http.get("/graphql", params={"query": BOOKS})
        assert response.status_code == 200, response.text
        got = Trace(list(service.exporter.get_finished_spans()))
    assert got.server.name == "GET /graphql"
    assert got.operation.name == "query Books"
    assert attributes(got.operation) == attributes(posted.operation)
    assert got.statements


async def test_a_batch_traces_each_operation(database_url: str) -> None:
    first = "query First { authors(first: 1) { edges { node { id } } } }"
    second = "query Second { books(first: 1) { edges { node { id } } } }"
    async with traced(database_url, batch_max_operations=2) as service:
        service.exporter.clear()
        response = await service.http.post("/graphql", json=[{"query": first}, {"query": second}])
        assert response.status_code == 200, response.text
        trace = Trace(list(service.exporter.get_finished_spans()))
    operations = [s for s in trace.spans if s.kind is SpanKind.INTERNAL]
    assert sorted(s.name for s in operations) == ["query First", "query Second"]
    server = trace.server
    assert all(
        s.parent is not None and s.parent.span_id == server.context.span_id for s in operations
    )


async def test_statements_the_service_runs_on_its_own_are_not_traced(database_url: str) -> None:
    """The replica position poller runs every DATABASE_READ_POLL_INTERVAL while reads come in
    (the database itself stands in for a replica): none of its statements is a trace."""
    async with traced(
        database_url, database_read_urls=[database_url], database_read_poll_interval=0.02
    ) as service:
        trace = await service.post({"query": BOOKS})  # a read wakes the poller
        replica = service.app.state.reads.replicas[0]
        readings: set[float] = set()
        for _ in range(1000):  # until the poller has read the replica's position three times
            if replica.read_at is not None:
                readings.add(replica.read_at)
            if len(readings) >= 3:
                break
            await asyncio.sleep(0.005)
        assert len(readings) >= 3, "the poller did not run"
        request = trace.server.context.trace_id
        stray = [
            s.name for s in service.exporter.get_finished_spans() if s.context.trace_id != request
        ]
    assert trace.statements
    assert stray == [], stray


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector on a free local port: keeps each export's path and spans."""

    def __init__(self) -> None:
        self.exports: list[tuple[str, ExportTraceServiceRequest]] = []
        collector = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.exports.append((self.path, ExportTraceServiceRequest.FromString(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Receive)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.mark.parametrize("seen_by", ["environment", "dotenv"])
async def test_spans_reach_a_collector_over_otlp_http(
    database_url: str, monkeypatch: pytest.MonkeyPatch, seen_by: str
) -> None:
    """The production set-up, no exporter injected: batched, sent as protobuf to /v1/traces,
    whether the SDK reads the endpoint from the environment or only the settings have it (a
    `.env` file)."""
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        if seen_by == "environment":
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        else:
            monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
        app = create_app(make_settings(database_url, otel_exporter_otlp_endpoint=collector.url))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.post("/graphql", json={"query": BOOKS})
                assert response.status_code == 200, response.text
        # The lifespan's end sent what was still batched.
    finally:
        collector.shutdown()
        collector.server_close()
    assert {path for path, _ in collector.exports} == {"/v1/traces"}
    names: set[str] = set()
    services: set[str] = set()
    for _, export in collector.exports:
        for resource_spans in export.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert {"POST /graphql", "query Books"} <= names
    assert services == {"catalog-api"}


async def test_an_excluded_path_leaves_no_span_at_all(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "readyz")
    async with traced(database_url) as service:
        service.exporter.clear()
        response = await service.http.get("/readyz")
        assert response.status_code == 200, response.text
        assert service.exporter.get_finished_spans() == ()
        trace = await service.post({"query": "{ authors(first: 1) { totalCount } }"})
    assert trace.statements, "the excluded path silenced more than itself"


async def test_off_without_the_endpoint_installs_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    app = create_app(make_settings(database_url))
    installed: set[object] = {m.cls for m in app.user_middleware}
    assert not any(cls.__module__.startswith("opentelemetry") for cls in installed), installed
    assert OperationSpanScope not in installed
    async with LifespanManager(app) as manager:
        assert not asyncpg_is_patched()
        assert not asyncpg_instrumentor().is_instrumented_by_opentelemetry
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/graphql", json={"query": BOOKS})
            assert response.status_code == 200, response.text
        assert not asyncpg_is_patched()


@pytest.mark.parametrize(
    ("endpoint", "environment"),
    [(None, {}), ("", {}), (ENDPOINT, {"OTEL_SDK_DISABLED": "true"})],
    ids=["unset", "empty", "sdk-disabled"],
)
def test_tracing_stays_off(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str | None,
    environment: dict[str, str],
) -> None:
    control = start_tracing(
        make_settings(database_url, otel_exporter_otlp_endpoint=ENDPOINT), InMemorySpanExporter()
    )
    assert control is not None
    control.provider.shutdown()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = make_settings(database_url, otel_exporter_otlp_endpoint=endpoint)
    assert start_tracing(settings, InMemorySpanExporter()) is None


async def test_the_driver_is_patched_only_while_a_traced_app_runs(database_url: str) -> None:
    async with traced(database_url):
        assert asyncpg_is_patched()
    assert not asyncpg_is_patched()
    assert not asyncpg_instrumentor().is_instrumented_by_opentelemetry


def test_the_document_hides_every_literal_and_keeps_the_shape() -> None:
    document = parse(
        "query Q($id: ID!, $n: Int = 5) { author(id: $id) { name } "
        'books(first: 7, filter: {titleContains: """secret\n""", year: 1.5}) '
        "@include(if: true) { totalCount } } fragment F on Author { name }"
    )
    shown = document_without_literals(document)
    assert shown == (
        "query Q($id: ID!, $n: Int = ?) { author(id: $id) { name } "
        "books(first: ?, filter: { titleContains: ?, year: ? }) @include(if: true) "
        "{ totalCount } } fragment F on Author { name }"
    )
    for literal in ("secret", "7", "1.5", "5"):
        assert literal not in shown


def test_a_long_document_is_cut() -> None:
    aliases = " ".join(f"a{i}: authors(first: {i}) {{ totalCount }}" for i in range(400))
    shown = document_without_literals(parse(f"query Long {{ {aliases} }}"))
    assert len(shown) == MAX_DOCUMENT_CHARS
    assert shown.startswith("query Long { a0: authors(first: ?)")
