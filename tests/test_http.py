"""The service over HTTP: GraphiQL, queries, liveness, and readiness when the database is not."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from api.app import create_app
from api.db.migrations import alembic_config, head_revisions
from tests.conftest import make_settings
from tests.factories import insert_authors
from tests.graphql_client import INTERNALS, GraphQLClient
from tests.postgres import create_database, drop_database

UNREACHABLE_URL = "postgresql://postgres@127.0.0.1:1/nothing"
# What a response about a broken database must never show its caller.
LEAKS = (*INTERNALS, "Errno", "127.0.0.1", "Connection refused", "postgresql://", "catalog_")


def assert_no_internals(response: httpx.Response) -> None:
    leaked = [marker for marker in LEAKS if marker.lower() in response.text.lower()]
    assert leaked == [], response.text


@asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A separately built app on `database_url`, lifespan run, over an in-process transport."""
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def unmigrated_url(postgres_admin_url: str) -> AsyncIterator[str]:
    url = await create_database(postgres_admin_url, prefix="catalog_http")
    try:
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


async def test_graphiql_is_served_to_browsers(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert "graphiql" in response.text.lower()


async def test_post_serves_a_query(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 3, books_each=1)
    response = await client.http.post(
        "/graphql",
        json={
            "query": "query Names($n: Int!) { authors(first: $n) { totalCount edges "
            "{ node { name } } } }",
            "variables": {"n": 2},
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "data": {
            "authors": {
                "totalCount": 3,
                "edges": [{"node": {"name": "Author 000"}}, {"node": {"name": "Author 001"}}],
            }
        }
    }


async def test_healthz(client: GraphQLClient) -> None:
    response = await client.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: GraphQLClient) -> None:
    response = await client.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_readyz_on_a_database_never_migrated(unmigrated_url: str) -> None:
    async with serve(unmigrated_url) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == {"status", "reason"}
    assert body["status"] == "unavailable"
    assert "migrations" in body["reason"]
    assert "none" in body["reason"]
    assert_no_internals(response)


async def test_readyz_on_a_database_behind_head(unmigrated_url: str) -> None:
    config = alembic_config(make_settings(unmigrated_url).migration_database, quiet=True)
    await asyncio.to_thread(command.upgrade, config, "0001")
    async with serve(unmigrated_url) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert "revision 0001" in body["reason"]
    assert f"expected {', '.join(sorted(head_revisions()))}" in body["reason"]
    assert "migrations" in body["reason"]
    assert_no_internals(response)


async def test_unreachable_database() -> None:
    async with serve(UNREACHABLE_URL) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        query = await http.post("/graphql", json={"query": "{ authors { totalCount } }"})

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    assert ready.status_code == 503, ready.text
    assert ready.json() == {"status": "unavailable", "reason": "database unreachable"}
    assert_no_internals(ready)

    assert query.status_code == 200, query.text
    payload = query.json()
    assert payload["data"] is None
    (error,) = payload["errors"]
    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert error["message"]
    assert error["path"] == ["authors"]
    assert_no_internals(query)


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_queries_on_a_database_never_migrated_say_so_without_tracebacks(
    unmigrated_url: str, planner: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """`serve` on an empty database: a clear code per request, one log line, no traceback."""
    with caplog.at_level(logging.INFO):
        async with serve(unmigrated_url, query_planner=planner) as http:
            response = await http.post("/graphql", json={"query": "{ authors { totalCount } }"})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "DATABASE_NOT_MIGRATED"
    assert "python -m api migrate" in error["message"]
    assert_no_internals(response)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
