"""Bounded work per request: what a client sends cannot wedge the server or grow its memory.

Each test reproduces one finding of the attack report (issue 15) through the real app and
asserts the work done (coercions run, documents parsed, plans compiled, bytes held, requests
shed), never the time it took.
"""

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from api.app import create_app
from api.graphql.planner import fastpath
from api.pipeline import resolvers as resolvers_module
from api.pipeline import respond as respond_module
from api.pipeline.budget import TokenBucket
from api.pipeline.documents import estimated_size
from api.pipeline.door import FrontDoor
from tests.conftest import make_settings
from tests.factories import insert_authors

TOKEN = "bounded-work-token-0123456789abcdef"
BOOKS = "query Books($first: Int) { books(first: $first) { edges { node { title } } } }"


def front_door(app: Starlette) -> FrontDoor:
    door = app.routes[0].app  # type: ignore[attr-defined]
    assert isinstance(door, FrontDoor)
    return door


@asynccontextmanager
async def served(
    database_url: str, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FrontDoor, Starlette]]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, front_door(app), app


def gql(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"query": query, **({"variables": variables} if variables is not None else {}), **extra}


class Counter:
    """Counts the calls of a function it replaces, then calls it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        self.calls = 0
        original: Callable[..., Any] = getattr(owner, name)

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)


# 1. An anonymous seedCatalog is refused before its variables are coerced -------------------------

SEED = "mutation Seed($input: SeedCatalogInput!) { seedCatalog(input: $input) { authors { id } } }"


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_an_anonymous_seed_of_70000_authors_never_reaches_coercion(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, planner: bool
) -> None:
    """The report's 0.91 MB body: 2.8 s of CPU before it was refused. Now, where writes need
    credentials, a body without any over ANONYMOUS_MAX_BODY_BYTES is refused from its
    Content-Length, unread; a smaller one costs its JSON decoding: no variable is coerced, no
    input object built, no statement sent."""
    executed = Counter(monkeypatch, resolvers_module.Resolvers, "execute")
    coerced = Counter(monkeypatch, fastpath.PlannedOperation, "coerce")
    decoded = Counter(monkeypatch, orjson, "loads")
    huge = gql(SEED, {"input": {"authors": [{"name": "a"}] * 70_000}})
    small = gql(SEED, {"input": {"authors": [{"name": "a"}] * 900}})
    async with served(database_url, api_token=TOKEN, query_planner=planner) as (http, _, _):
        refused_unread = await http.post("/graphql", json=huge)
        assert decoded.calls == 0  # 413 from its Content-Length: never read, never decoded
        refused_unauthorised = await http.post("/graphql", json=small)
    assert refused_unread.status_code == 413
    assert refused_unread.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    payload = refused_unauthorised.json()
    assert "data" not in payload, payload
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
    assert (executed.calls, coerced.calls) == (0, 0)
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM authors")) == 0


async def test_an_authorised_seed_over_its_cap_is_refused_before_coercion(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed = Counter(monkeypatch, resolvers_module.Resolvers, "execute")
    body = gql(SEED, {"input": {"authors": [{"name": "a"}] * 5_000}})
    async with served(database_url, api_token=TOKEN) as (http, _, _):
        response = await http.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "TOO_MANY"
    assert executed.calls == 0


# 2. Caches are bounded by bytes ------------------------------------------------------------------


def emoji_document(n: int, size: int) -> str:
    """A distinct document of about `size` bytes holding one string that starts with an emoji
    (a Python str of it takes 4 bytes a character: the report's 15 MB per MiB)."""
    head = f'query Q{n} {{ author(id: "😀'
    return head + "x" * (size - len(head.encode()) - 20) + '") { name } }'


async def test_500_distinct_one_mib_documents_are_refused_before_lexing(database_url: str) -> None:
    async with served(database_url, max_body_bytes=2 * 1024 * 1024) as (http, door, _):
        for n in range(500):
            response = await http.post("/graphql", json=gql(emoji_document(n, 1024 * 1024)))
            assert response.status_code == 413, response.text
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "DOCUMENT_TOO_LARGE"
        assert door.documents.parsed == 0
        assert door.documents.cache.bytes == 0


async def test_distinct_documents_never_hold_more_than_the_cache_budget(
    database_url: str,
) -> None:
    budget = 2 * 1024 * 1024
    async with served(
        database_url, document_cache_bytes=budget, new_document_bytes_per_second=10**9
    ) as (http, door, _):
        for n in range(300):
            query = f"query Q{n} {{ books(first: {n % 50 + 1}) {{ totalCount }} }}"
            valid = await http.post("/graphql", json=gql(query))
            assert valid.status_code == 200, valid.text
            invalid = await http.post("/graphql", json=gql(emoji_document(n, 60_000)))
            assert invalid.json()["errors"][0]["extensions"]["code"] in (
                "GRAPHQL_VALIDATION_FAILED",
                "BAD_USER_INPUT",
            )
            assert door.documents.cache.bytes <= budget
        assert 0 < len(door.documents.cache) < 300  # the least recent left to make room
        assert door.documents.cache.bytes <= budget


DOCUMENT_SHAPES = {
    "aliases": "{" + " ".join(f"a{i}: __typename" for i in range(600)) + "}",
    "emoji string": '{ author(id: "😀' + "x" * 60_000 + '") { name } }',
    "ascii string": '{ author(id: "' + "x" * 60_000 + '") { name } }',
    "comment": "# " + "x" * 60_000 + "\n{ __typename }",
    "fields": "{" + " __typename" * 1900 + "}",
}


@pytest.mark.parametrize("document", DOCUMENT_SHAPES.values(), ids=list(DOCUMENT_SHAPES))
def test_a_parsed_documents_charge_covers_what_it_holds(document: str) -> None:
    """The cache charges each document its estimated size: never less than what parsing it
    allocated (measured with tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        from graphql.language.parser import Parser

        parser = Parser(document, max_tokens=10_000)
        node = parser.parse_document()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert node is not None
    assert estimated_size(document, parser.token_count) >= held


# 3. Parse once; comments count toward the token limit --------------------------------------------


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_a_document_is_parsed_and_validated_once_for_both_executors(
    database_url: str, monkeypatch: pytest.MonkeyPatch, planner: bool
) -> None:
    import graphql.language.parser as parser_module
    import strawberry.schema.schema as strawberry_schema

    strawberry_parses = Counter(monkeypatch, strawberry_schema, "parse")
    strawberry_validations = Counter(monkeypatch, strawberry_schema, "validate_document")
    parses = Counter(monkeypatch, parser_module.Parser, "parse_document")
    async with served(database_url, query_planner=planner) as (http, door, _):
        for first in range(1, 6):
            response = await http.post("/graphql", json=gql(BOOKS, {"first": first}))
            assert response.json() == {"data": {"books": {"edges": []}}}
    assert door.documents.parsed == 1
    assert parses.calls == 1
    assert (strawberry_parses.calls, strawberry_validations.calls) == (0, 0)


async def test_comments_count_toward_the_token_limit(database_url: str) -> None:
    document = "\n".join(f"# comment {n}" for n in range(3000)) + "\n{ __typename }"
    async with served(database_url) as (http, door, _):
        response = await http.post("/graphql", json=gql(document))
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in error["message"]
    assert len(door.documents.cache) == 0


async def test_new_documents_past_the_parse_budget_are_refused_and_known_ones_still_served(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And each refusal is answered after a pause, so a client looping on new documents
    cannot loop fast (the pauses are recorded here, not waited)."""
    now = [0.0]
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(respond_module, "pause", pause)
    async with served(database_url) as (http, door, _):
        door.documents.parse_budget = TokenBucket(1000, 3000, clock=lambda: now[0])
        known = await http.post("/graphql", json=gql("{ __typename }"))
        assert known.status_code == 200
        refused = 0
        for n in range(20):
            response = await http.post(
                "/graphql", json=gql(f"query Q{n} {{ __typename }} # {'x' * 400}")
            )
            if response.status_code == 503:
                refused += 1
                assert response.json()["errors"][0]["extensions"]["code"] == "SERVER_BUSY"
                assert int(response.headers["retry-after"]) >= 1
        again = await http.post("/graphql", json=gql("{ __typename }"))
        assert again.json() == {"data": {"__typename": "Query"}}
    assert refused >= 10
    assert door.documents.parsed <= 10
    assert pauses == [respond_module.SLOW_DOWN_SECONDS] * refused


# 4. Compile amplification ------------------------------------------------------------------------

SHAPES = (
    "query Shape($first: Int, $last: Int, $order: BookOrderBy, $after: String, $f: BookFilter) "
    "{ books(first: $first, last: $last, orderBy: $order, after: $after, filter: $f) "
    "{ edges { node { title } } } }"
)


async def test_past_the_compile_budget_new_shapes_go_to_the_resolvers(
    database_url: str, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 2, books_each=2)
    now = [0.0]
    async with served(database_url) as (http, door, _):
        assert door.plans is not None
        door.plans.compile_budget = TokenBucket(1, 3, clock=lambda: now[0])
        orders = ["TITLE_ASC", "TITLE_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"]
        # An ordering and a direction make a shape with no filter, and one for any filters
        # (bound, never compiled per filter).
        filters = [None, {"titleContains": "Boo"}, {"publishedYearFrom": 1000}]
        answers = []
        for order in orders:
            for direction in ("first", "last"):
                for book_filter in filters:
                    variables = {direction: 2, "order": order, "f": book_filter}
                    response = await http.post("/graphql", json=gql(SHAPES, variables))
                    assert response.status_code == 200, response.text
                    answers.append(response.json())
        compiled, refused = door.plans.compiled, door.plans.compile_budget.refused
    assert compiled == 2  # learning the document took one of the three
    # The first ordering and direction, with and without filters, were planned; the rest went
    # to the resolvers.
    assert refused == len(answers) - len(filters)
    assert all("errors" not in a for a in answers), answers


# 5. Load shedding --------------------------------------------------------------------------------


@asynccontextmanager
async def authors_locked(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every read of authors and their count blocks until the block ends (a lock held by
    another session)."""
    async with engine.connect() as connection:
        await connection.execute(text("LOCK TABLE authors, row_counts IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await connection.rollback()


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_requests_beyond_the_queue_are_shed_at_once_and_readyz_stays_ready(
    database_url: str, engine: AsyncEngine, planner: bool
) -> None:
    """The report: 200 clients queued without limit (p50 41 s, no error), and /readyz said
    "database unreachable" on a healthy, busy database. Now the queue holds `db_queue_limit`
    requests, the next is answered at once with 503 SERVER_BUSY, and the instance is ready."""
    settings = {
        "db_pool_size": 1,
        "db_max_overflow": 0,
        "db_queue_limit": 2,
        "db_read_timeout": 30.0,
        "query_planner": planner,
    }
    query = gql("query Count { authors { totalCount } }")
    async with served(database_url, **settings) as (http, _, app):
        gate = app.state.gates["planner" if planner else "resolvers"]
        await http.post("/graphql", json=query)  # learnt, and a connection in the pool
        async with authors_locked(engine):
            held = [asyncio.create_task(http.post("/graphql", json=query)) for _ in range(3)]
            for _ in range(500):  # one runs (blocked by the lock) and two wait
                if gate.waiting == 2:
                    break
                await asyncio.sleep(0.01)
            assert (gate.inside, gate.waiting) == (1, 2)
            shed = await http.post("/graphql", json=query)
            ready = await http.get("/readyz")
        answers = await asyncio.gather(*held)
    assert shed.status_code == 503, shed.text
    assert shed.headers["retry-after"] == "1"
    assert [e["extensions"]["code"] for e in shed.json()["errors"]] == ["SERVER_BUSY"]
    assert gate.shed == 1
    assert ready.status_code == 200, ready.text  # saturated, not unreachable
    assert [a.json() for a in answers] == [{"data": {"authors": {"totalCount": 0}}}] * 3


async def test_a_wait_for_a_connection_is_bounded_by_the_read_budget(
    database_url: str, engine: AsyncEngine
) -> None:
    """The wait in the queue comes out of the read budget: past it, SERVER_BUSY, never an
    INTERNAL_SERVER_ERROR from a pool timeout."""
    settings = {"db_pool_size": 1, "db_max_overflow": 0, "db_read_timeout": 0.5}
    query = gql("query Count { authors { totalCount } }")
    async with served(database_url, query_planner=False, **settings) as (http, _, app):
        gate = app.state.gates["resolvers"]
        async with gate.slot(None):  # the pool's one place, held by a long request
            second = await http.post("/graphql", json=query)
        after = await http.post("/graphql", json=query)
    assert after.json() == {"data": {"authors": {"totalCount": 0}}}
    assert second.status_code == 503, second.text
    assert second.json()["errors"][0]["extensions"]["code"] == "SERVER_BUSY"
    assert gate.shed == 1


# 7, 8. Batches and operation names ---------------------------------------------------------------


async def test_a_batched_mutation_after_a_query_works(
    database_url: str, engine: AsyncEngine
) -> None:
    batch = [
        gql("{ __typename }"),
        gql('mutation { createAuthor(input: {name: "Batched"}) { author { name } } }'),
    ]
    async with served(database_url, batch_max_operations=5) as (http, _, _):
        response = await http.post("/graphql", json=batch)
    assert response.json() == [
        {"data": {"__typename": "Query"}},
        {"data": {"createAuthor": {"author": {"name": "Batched"}}}},
    ]


async def test_the_cost_limit_counts_the_whole_batch(database_url: str) -> None:
    query = gql("{ authors(first: 100) { edges { node { books(first: 100) { totalCount } } } } }")
    async with served(database_url, batch_max_operations=5, max_query_cost=15_000) as (
        http,
        _,
        _,
    ):
        one = await http.post("/graphql", json=[query])
        two = await http.post("/graphql", json=[query, query])
    assert "errors" not in one.json()[0], one.text
    (error,) = two.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_several_operations_without_a_name_is_an_error(database_url: str) -> None:
    document = "query A { __typename } query B { __typename }"
    async with served(database_url) as (http, _, _):
        unnamed = await http.post("/graphql", json=gql(document))
        named = await http.post("/graphql", json=gql(document, operationName="B"))
        unknown = await http.post("/graphql", json=gql(document, operationName="C"))
    (error,) = unnamed.json()["errors"]
    assert error["extensions"]["code"] == "OPERATION_NAME_REQUIRED"
    assert "data" not in unnamed.json()
    assert named.json() == {"data": {"__typename": "Query"}}
    assert unknown.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_FOUND"


# 9. Outcomes counted; bodies read whole ----------------------------------------------------------


async def test_syntax_and_validation_errors_are_counted_with_their_own_outcome(
    database_url: str,
) -> None:
    async with served(database_url) as (http, _, _):
        await http.post("/graphql", json=gql("{ authors { "))
        await http.post("/graphql", json=gql("{ nothingHere }"))
        metrics = (await http.get("/metrics")).text
    assert 'outcome="parse_error"' in metrics
    assert 'outcome="validation_error"' in metrics


async def test_invalid_json_is_a_400_with_a_json_body_and_no_traceback(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with served(database_url) as (http, _, _):
        response = await http.post(
            "/graphql", content=b'{"query": ', headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_client_that_disconnects_mid_body_runs_nothing(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated body is never handed on as if it were all of it."""
    app = create_app(make_settings(database_url))
    executed = Counter(monkeypatch, resolvers_module.Resolvers, "execute")
    body = orjson.dumps(gql('mutation { createAuthor(input: {name: "Half"}) { author { id } } }'))
    messages = [
        {"type": "http.request", "body": body[:20], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with LifespanManager(app) as manager:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
            "state": manager._state,
        }
        await manager.app(scope, receive, send)  # type: ignore[arg-type]
    assert executed.calls == 0
    assert not [m for m in sent if m["type"] == "http.response.start"]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM authors")) == 0


async def test_a_body_slower_than_its_timeout_is_a_json_408_and_runs_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(database_url, http_body_timeout=0.2))
    executed = Counter(monkeypatch, resolvers_module.Resolvers, "execute")
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> Any:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"query": ', "more_body": True}
        await asyncio.sleep(10)  # the rest never comes
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with LifespanManager(app) as manager:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
            "state": manager._state,
        }
        await manager.app(scope, receive, send)  # type: ignore[arg-type]
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    assert executed.calls == 0


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_a_read_stopped_while_waiting_on_a_lock_is_database_busy(
    database_url: str, engine: AsyncEngine, planner: bool
) -> None:
    """Not QUERY_TIMEOUT ("ask for less"): the query was cheap, another transaction's lock
    held it. Issue 18's honest codes."""
    query = gql("query Count { authors { edges { node { name } } } }")
    settings = {"query_planner": planner, "db_read_timeout": 0.5}
    async with served(database_url, **settings) as (http, _, _), authors_locked(engine):
        response = await http.post("/graphql", json=query)
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "DATABASE_BUSY", error
    assert error["path"] == ["authors"]
