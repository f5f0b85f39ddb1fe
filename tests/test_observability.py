"""What operators see of each request: request ids, one log line, metrics, masked errors."""

import asyncio
import io
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Message, Receive, Scope, Send

from alembic import command
from api.app import create_app
from api.db.migrations import alembic_config
from api.graphql import errors as error_policy
from api.observability.clients import client_of
from api.observability.logs import (
    TEXT_FORMAT,
    LogSettings,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
)
from api.observability.metrics import MAX_CLIENT_LABELS, Metrics, client_label
from api.observability.request_ids import request_id, request_ids
from api.observability.requests import RequestLogMiddleware, record_rejection
from api.pipeline.admission import Gate
from tests.conftest import make_settings
from tests.factories import insert_authors
from tests.graphql_client import INTERNALS, GraphQLClient
from tests.postgres import create_database, drop_database

REQUEST_LOGGER = "api.request"
AUTHORS_QUERY = "query {name} {{ authors(first: 2) {{ totalCount edges {{ node {{ name }} }} }} }}"
BAD_ID_QUERY = 'query {name} {{ author(id: "garbage") {{ name }} }}'


def operation_name(prefix: str) -> str:
    """Unique per test: the `client` app and its metrics live for the whole session."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def post(
    http: httpx.AsyncClient, query: str, name: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    response = await http.post(
        "/graphql", json={"query": query, "operationName": name}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


@contextmanager
def request_logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The api.request records, with request ids added as configure_logging's handler does."""
    request_ids = RequestIdFilter()
    caplog.handler.addFilter(request_ids)
    records: list[logging.LogRecord] = []
    try:
        with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
            yield records
            records.extend(r for r in caplog.records if r.name == REQUEST_LOGGER)
    finally:
        caplog.handler.removeFilter(request_ids)


def fields(record: logging.LogRecord, *names: str) -> tuple[Any, ...]:
    """Attributes the request log adds to its records (a KeyError when one is missing)."""
    return tuple(record.__dict__[name] for name in names)


def samples(text: str, name: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def value_of(text: str, name: str, **labels: str) -> float | None:
    found = [
        s.value for s in samples(text, name) if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


# --- request ids ------------------------------------------------------------------------------


async def test_every_response_carries_a_fresh_request_id(client: GraphQLClient) -> None:
    responses = [
        await client.http.get("/healthz"),
        await client.http.get("/metrics"),
        await post(client.http, AUTHORS_QUERY.format(name="Ids"), "Ids"),
        await client.http.post(
            "/graphql", content=b"not json", headers={"content-type": "text/plain"}
        ),
    ]
    ids = [response.headers.get("x-request-id") for response in responses]
    assert all(value is not None and is_uuid4(value) for value in ids), ids
    assert len(set(ids)) == len(ids)


async def test_the_server_makes_every_request_id_and_logs_the_clients_beside_it(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A client's X-Request-ID could repeat another request's: it is logged, never used."""
    incoming = str(uuid.uuid4())
    with request_logs(caplog) as records:
        responses = [
            await post(
                client.http, AUTHORS_QUERY.format(name="Echo"), "Echo", {"X-Request-ID": incoming}
            )
            for _ in range(2)
        ]
    ids = [response.headers["x-request-id"] for response in responses]
    assert incoming not in ids
    assert len(set(ids)) == 2
    assert all(is_uuid4(value) for value in ids)
    assert [fields(r, "request_id", "client_request_id") for r in records] == [
        (ids[0], incoming),
        (ids[1], incoming),
    ]
    assert all(f"client_request_id={incoming}" in r.getMessage() for r in records)


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("not a request id", id="spaces"),
        pytest.param("a" * 65, id="long"),
        pytest.param("id;forged=1", id="punctuation"),
        pytest.param("é", id="not ascii"),
    ],
)
async def test_a_malformed_client_request_id_is_not_logged(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture, incoming: str
) -> None:
    """Clients cannot put arbitrary text into their request's log line."""
    with request_logs(caplog) as records:
        response = await client.http.get(
            "/healthz", headers=[(b"X-Request-ID", incoming.encode("latin-1"))]
        )
    assert is_uuid4(response.headers["x-request-id"])
    (record,) = records
    assert "client_request_id" not in record.__dict__
    assert "client_request_id" not in record.getMessage()


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("0f9e8d7c-6b5a-4f3e-8d2c-1b0a99887766", id="uuid"),
        pytest.param("0f9e8d7c6b5a4f3e8d2c1b0a99887766", id="hex"),
        pytest.param("01HGW2BBG4Z0C1Q5VJ3M6XYZ9R", id="ulid"),
        pytest.param("web.checkout_42", id="dotted"),
        pytest.param("a" * 64, id="64 characters"),
    ],
)
def test_well_formed_client_request_ids(incoming: str) -> None:
    client = client_of([(b"x-request-id", incoming.encode())])
    assert client.request_id == incoming


# --- client awareness -----------------------------------------------------------------------------


async def test_client_names_and_versions_are_logged_and_counted(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    name = operation_name("web")
    apollo = {"apollographql-client-name": name, "apollographql-client-version": "1.2.3"}
    other = {"graphql-client-name": name, "graphql-client-version": "2.0"}
    with request_logs(caplog) as records:
        await post(client.http, AUTHORS_QUERY.format(name="Aware"), "Aware", apollo)
        await post(client.http, AUTHORS_QUERY.format(name="Aware"), "Aware", apollo)
        await post(client.http, AUTHORS_QUERY.format(name="Aware"), "Aware", other)
        await client.http.get("/healthz", headers=apollo)
    text = (await client.http.get("/metrics")).text

    assert [fields(r, "client_name", "client_version") for r in records] == [
        (name, "1.2.3"),
        (name, "1.2.3"),
        (name, "2.0"),
        (name, "1.2.3"),
    ]
    assert f"client={name}/1.2.3" in records[0].getMessage()
    counted = "graphql_client_requests_total"
    assert value_of(text, counted, client=name, version="1.2.3") == 2  # /graphql only
    assert value_of(text, counted, client=name, version="2.0") == 1


async def test_client_labels_are_bounded_and_sanitised(database_url: str) -> None:
    sent = [f"client-{n}" for n in range(MAX_CLIENT_LABELS + 5)]
    odd, long = 'a"b{c}\\d', "x" * 500
    async with serve(database_url) as http:
        for name in [*sent, odd, long]:
            for version in ["1", "2", "3", "4", "5", "6", "7"] if name == sent[0] else ["1"]:
                await http.get(
                    "/graphql",
                    headers={
                        "apollographql-client-name": name,
                        "apollographql-client-version": version,
                    },
                )
        await http.get("/graphql")  # no name at all
        text = (await http.get("/metrics")).text

    counted = samples(text, "graphql_client_requests_total")
    by_labels = {(s.labels["client"], s.labels["version"]): s.value for s in counted}
    names = {client for client, _ in by_labels}
    assert names == {*sent[:MAX_CLIENT_LABELS], "other"}
    assert by_labels["other", "other"] == 5 + 2 + 1  # the late names, odd, long, and none
    assert {v for c, v in by_labels if c == sent[0]} == {"1", "2", "3", "4", "5", "other"}
    assert by_labels[sent[0], "other"] == 2
    assert client_label(odd) == "a_b_c__d"
    assert client_label(long) == "x" * 64
    assert client_label(None) == "unknown"


# --- what a log line may hold ---------------------------------------------------------------------


async def test_paths_and_operation_names_are_capped(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    long_name = "Op" + "x" * 5000
    with request_logs(caplog) as records:
        await post(client.http, AUTHORS_QUERY.format(name=long_name), long_name)
        await client.http.get("/" + "p" * 5000)
    named, pathed = records
    (operation,) = fields(named, "operation")
    assert operation == long_name[:200] + f"…[{len(long_name)} characters]"
    (path,) = fields(pathed, "path")
    assert path == "/" + "p" * 199 + "…[5001 characters]"
    assert all(len(r.getMessage()) < 600 for r in records)


def text_line(record: logging.LogRecord) -> str:
    """What the text handler configure_logging installs writes for `record`."""
    RequestIdFilter().filter(record)
    return TextFormatter(TEXT_FORMAT).format(record)


async def test_text_logs_escape_what_clients_send(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A percent-decoded newline cannot start a forged line, nor ANSI escapes reach a terminal."""
    forged = "\n2026-12-04 12:00:00,000 INFO api.request [x] POST /graphql 200"
    with request_logs(caplog) as records:
        await client.http.get(
            "/nothing%0A2026-12-04%2012:00:00,000%20INFO%20forged%1B[2J",
            headers=[(b"apollographql-client-name", b"web\x1b[31m\x85app")],
        )
    (record,) = records
    assert "\n" in fields(record, "path")[0]
    line = text_line(record)
    assert "\n" not in line
    assert "\x1b" not in line
    assert "\x85" not in line
    assert "/nothing\\n2026-12-04 12:00:00,000 INFO forged\\x1b[2J" in line
    assert "client=web\\x1b[31m\\x85app/-" in line

    made = logging.getLogger("api").makeRecord(
        "api", logging.INFO, __file__, 1, "operation %s", (forged,), None
    )
    assert text_line(made).count("\n") == 0


def test_text_tracebacks_stay_under_their_record() -> None:
    try:
        raise ValueError("bad input\n2026-12-04 12:00:00,000 INFO forged\x1b[2J")
    except ValueError:
        record = logging.getLogger("api").makeRecord(
            "api", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    first, *rest = text_line(record).split("\n")
    assert first.endswith("ERROR api [-] failed")
    assert rest
    assert all(line.startswith("  ") for line in rest), rest
    assert "\x1b" not in "".join(rest)


# --- one log record per request -----------------------------------------------------------------


async def test_one_request_log_record_per_request(
    client: GraphQLClient, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await insert_authors(engine, 3, books_each=1)
    ok_name, error_name = operation_name("Listed"), operation_name("Refused")
    with request_logs(caplog) as records:
        ok = await post(client.http, AUTHORS_QUERY.format(name=ok_name), ok_name)
        refused = await post(client.http, BAD_ID_QUERY.format(name=error_name), error_name)
        health = await client.http.get("/healthz")

    assert "errors" not in ok.json()
    assert refused.json()["errors"]
    assert len(records) == 3, [r.getMessage() for r in records]
    by_id = {fields(record, "request_id")[0]: record for record in records}
    assert set(by_id) == {r.headers["x-request-id"] for r in (ok, refused, health)}

    listed = by_id[ok.headers["x-request-id"]]
    assert fields(listed, "operation", "outcome", "status") == (ok_name, "ok", 200)
    (statements, duration_ms) = fields(listed, "sql_statements", "duration_ms")
    assert statements > 0
    assert isinstance(duration_ms, float)
    assert duration_ms >= 0
    assert listed.levelno == logging.INFO

    failed = by_id[refused.headers["x-request-id"]]
    assert fields(failed, "operation", "outcome", "status") == (error_name, "error", 200)
    assert fields(failed, "sql_statements") == (0,)  # refused before touching the database

    probe = by_id[health.headers["x-request-id"]]
    assert fields(probe, "operation", "outcome", "status", "path") == (None, "ok", 200, "/healthz")


async def test_a_refused_request_is_logged_with_its_status(
    client: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with request_logs(caplog) as records:
        response = await client.http.post(
            "/graphql", content=b"{}", headers={"content-type": "text/plain"}
        )
    assert response.status_code == 415
    (record,) = records
    assert fields(record, "status", "outcome", "operation", "request_id") == (
        415,
        "http_error",
        None,
        response.headers["x-request-id"],
    )


# --- metrics ------------------------------------------------------------------------------------


async def test_metrics_count_requests_by_operation_and_outcome(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 2)
    name = operation_name("Counted")
    await post(client.http, AUTHORS_QUERY.format(name=name), name)
    await post(client.http, AUTHORS_QUERY.format(name=name), name)
    await post(client.http, BAD_ID_QUERY.format(name=name), name)

    response = await client.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value_of(text, "graphql_requests_total", operation=name, outcome="ok") == 2
    assert value_of(text, "graphql_requests_total", operation=name, outcome="error") == 1
    assert value_of(text, "graphql_request_duration_seconds_count", operation=name) == 3
    buckets = [
        s
        for s in samples(text, "graphql_request_duration_seconds_bucket")
        if s.labels["operation"] == name
    ]
    assert len(buckets) > 2
    assert {s.labels["le"] for s in buckets} >= {"+Inf"}
    assert max(s.value for s in buckets) == 3
    seconds = value_of(text, "graphql_request_duration_seconds_sum", operation=name)
    assert seconds is not None
    assert seconds > 0
    # Every request has returned its connection by the time its response is read.
    assert value_of(text, "db_pool_connections_in_use", pool="orm") == 0
    assert value_of(text, "db_pool_connections_in_use", pool="planner") == 0


def test_queue_gauges_read_each_gate_when_scraped() -> None:
    metrics = Metrics()
    planner, resolvers = Gate("planner", 1, 5), Gate("resolvers", 1, 5)
    metrics.watch_gates({"planner": planner, "resolvers": resolvers})
    planner.waiting, planner.shed, resolvers.shed = 3, 2, 7
    text = generate_latest(metrics.registry).decode()
    assert value_of(text, "db_queue_waiting", pool="planner") == 3
    assert value_of(text, "db_queue_shed", pool="planner") == 2
    assert value_of(text, "db_queue_waiting", pool="resolvers") == 0
    assert value_of(text, "db_queue_shed", pool="resolvers") == 7


async def test_metrics_ignore_requests_that_are_not_graphql_operations(
    client: GraphQLClient,
) -> None:
    before = (await client.http.get("/metrics")).text
    await client.http.get("/healthz")
    await client.http.get("/readyz")
    after = (await client.http.get("/metrics")).text
    total = "graphql_requests_total"
    assert sum(s.value for s in samples(after, total)) == sum(
        s.value for s in samples(before, total)
    )


# --- masked errors --------------------------------------------------------------------------------


@asynccontextmanager
async def serve(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def behind_head_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A database at revision 0001: `authors` has no `country` column yet."""
    url = await create_database(postgres_admin_url, prefix="catalog_obs")
    try:
        config = alembic_config(make_settings(url).migration_database, quiet=True)
        await asyncio.to_thread(command.upgrade, config, "0001")
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


async def test_an_unexpected_error_is_masked_logged_and_counted(
    behind_head_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing column is normally DATABASE_NOT_MIGRATED; treated as unforeseen here, it is
    # the SQL error nobody planned for, whose details must stay in the log.
    monkeypatch.setattr(error_policy, "is_not_migrated", lambda _: False)
    caplog.set_level(logging.ERROR, logger="api.errors")
    name = "BrokenSchema"
    async with serve(behind_head_url) as http:
        with request_logs(caplog) as records:
            response = await post(http, AUTHORS_QUERY.format(name=name), name)
        metrics = (await http.get("/metrics")).text

    request_id = response.headers["x-request-id"]
    payload = response.json()
    assert payload["data"] is None
    (error,) = payload["errors"]
    assert error["message"] == "Internal server error"
    assert error["path"] == ["authors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    leaks = [
        m
        for m in (*INTERNALS, "country", "does not exist", "authors.", "catalog_obs")
        if m in response.text
    ]
    assert leaks == [], response.text

    # The full error is in the log, under the same request id.
    (logged,) = [r for r in caplog.records if r.name == "api.errors"]
    assert logged.exc_info is not None
    assert "country" in str(logged.exc_info[1])
    (request_log,) = records
    assert fields(request_log, "outcome", "request_id") == ("error", request_id)
    assert value_of(metrics, "graphql_requests_total", operation=name, outcome="error") == 1


# --- JSON logs ------------------------------------------------------------------------------------


@contextmanager
def configured_logging(settings: LogSettings) -> Iterator[logging.Handler]:
    """configure_logging, undone afterwards: it replaces the root handlers and tunes uvicorn's."""
    root = logging.getLogger()
    uvicorn_loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error")]
    access = logging.getLogger("uvicorn.access")
    saved = (
        root.handlers[:],
        root.level,
        access.disabled,
        [(lg.handlers[:], lg.propagate) for lg in uvicorn_loggers],
    )
    try:
        configure_logging(settings)
        (handler,) = root.handlers
        yield handler
    finally:
        root.handlers[:], root.level, access.disabled = saved[0], saved[1], saved[2]
        for lg, (handlers, propagate) in zip(uvicorn_loggers, saved[3], strict=True):
            lg.handlers[:] = handlers
            lg.propagate = propagate


def test_json_logs_are_one_object_per_line_with_the_request_id() -> None:
    stream = io.StringIO()
    with configured_logging(
        LogSettings(_env_file=None, log_format="json", log_level="INFO")
    ) as handler:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logger = logging.getLogger("api.request")
        token = request_id.set("0f9e8d7c6b5a4f3e8d2c1b0a99887766")
        try:
            handler.handle(
                logger.makeRecord(
                    "api.request",
                    logging.INFO,
                    __file__,
                    1,
                    "POST /graphql %d",
                    (200,),
                    None,
                    extra={"operation": "Listed", "outcome": "ok"},
                )
            )
            try:
                raise RuntimeError("boom\nsecond line")
            except RuntimeError:
                handler.handle(
                    logger.makeRecord(
                        "api.errors", logging.ERROR, __file__, 2, "failed", (), sys.exc_info()
                    )
                )
        finally:
            request_id.reset(token)
        handler.handle(logger.makeRecord("api", logging.WARNING, __file__, 3, "outside", (), None))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3, stream.getvalue()
    first, second, third = (json.loads(line) for line in lines)
    for entry in (first, second, third):
        assert {"time", "level", "logger", "message", "request_id"} <= set(entry), entry
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "api.request",
        "POST /graphql 200",
    )
    assert first["request_id"] == "0f9e8d7c6b5a4f3e8d2c1b0a99887766"
    assert (first["operation"], first["outcome"]) == ("Listed", "ok")
    assert (second["level"], second["logger"]) == ("ERROR", "api.errors")
    assert second["request_id"] == "0f9e8d7c6b5a4f3e8d2c1b0a99887766"
    assert "RuntimeError: boom\nsecond line" in second["exc_info"]  # a traceback, on one line
    assert third["request_id"] == "-"
    assert third["time"][:4].isdigit()


def test_text_logs_carry_the_request_id() -> None:
    stream = io.StringIO()
    with configured_logging(
        LogSettings(_env_file=None, log_format="text", log_level="INFO")
    ) as handler:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        token = request_id.set("feedface")
        try:
            handler.handle(
                logging.getLogger("api").makeRecord(
                    "api", logging.INFO, __file__, 1, "hello", (), None
                )
            )
        finally:
            request_id.reset(token)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("INFO api [feedface] hello")


# --- HTTP-level rejections ------------------------------------------------------------------------

# Requests refused before any GraphQL operation ran: what is sent, and how it is counted.
REJECTIONS: dict[str, tuple[dict[str, Any], str, str]] = {
    "text/plain": (
        {"method": "POST", "content": b"{}", "headers": {"content-type": "text/plain"}},
        "415",
        "unsupported_media_type",
    ),
    "PUT": ({"method": "PUT", "json": {"query": "{ __typename }"}}, "405", "method_not_allowed"),
    "mutation over GET": (
        {
            "method": "GET",
            "params": {"query": 'mutation { createAuthor(input: {name: "G"}) { author { id } } }'},
        },
        "405",
        "mutation_over_get",
    ),
    "Content-Length over the limit": (
        {
            "method": "POST",
            "content": b"{}",
            "headers": {"content-type": "application/json", "content-length": "99999999"},
        },
        "413",
        "body_too_large",
    ),
    "invalid JSON": (
        {"method": "POST", "content": b"{", "headers": {"content-type": "application/json"}},
        "400",
        "invalid_json",
    ),
    "a JSON number": (
        {"method": "POST", "content": b"1", "headers": {"content-type": "application/json"}},
        "400",
        "not_an_operation",
    ),
}


async def test_metrics_count_http_rejections_by_status_and_reason(database_url: str) -> None:
    async with serve(database_url) as http:
        statuses = []
        for request, _, _ in REJECTIONS.values():
            for _ in range(2):
                statuses.append((await http.request(url="/graphql", **request)).status_code)
        text = (await http.get("/metrics")).text

    assert statuses == [int(status) for _, status, _ in REJECTIONS.values() for _ in range(2)]
    for name, (_, status, reason) in REJECTIONS.items():
        counted = value_of(text, "graphql_http_rejections_total", status=status, reason=reason)
        assert counted == 2, (name, counted)
    assert samples(text, "graphql_requests_total") == []  # no operation ran


async def test_a_client_gone_before_its_answer_is_logged_499_not_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that disconnects mid-body gets no answer; that is its doing, not an error."""
    metrics = Metrics()

    async def abandoned(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.disconnect"
        record_rejection("client_disconnected")

    async def disconnect() -> Message:
        return {"type": "http.disconnect"}

    async def nothing_sent(message: Message) -> None:
        raise AssertionError(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": []}
    with request_logs(caplog) as records:
        middleware = RequestLogMiddleware(abandoned, metrics=metrics, ids=request_ids())
        await middleware(scope, disconnect, nothing_sent)
    (record,) = records
    assert fields(record, "status", "outcome") == (499, "http_error")
    assert record.levelno == logging.INFO
    text = generate_latest(metrics.registry).decode()
    assert (
        value_of(text, "graphql_http_rejections_total", status="499", reason="client_disconnected")
        == 1
    )
    assert value_of(text, "graphql_http_rejections_total", status="500") is None
