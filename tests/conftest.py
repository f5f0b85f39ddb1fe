"""Fixtures: a migrated database per test run, a clean catalogue per test, the app over HTTP."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.db.engine import EngineOptions, create_engine
from api.db.migrations import upgrade_to_head
from api.db.models import Base
from api.settings import Settings
from tests.graphql_client import GraphQLClient
from tests.postgres import admin_url, create_database, drop_database, sweep_stale_databases
from tests.throwaway_postgres import throwaway_postgres


@pytest.fixture(scope="session")
async def postgres_admin_url() -> AsyncIterator[str]:
    """The configured or local server; else a cluster of this run's own, deleted at the end."""
    found = await admin_url()
    if found is not None:
        await sweep_stale_databases(found)
        yield found
        return
    with throwaway_postgres() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    url = await create_database(postgres_admin_url)
    await asyncio.to_thread(
        upgrade_to_head, Settings(database_url=url).migration_database, quiet=True
    )
    yield url
    await drop_database(postgres_admin_url, url)


# Small pools: each app a test keeps open holds its idle connections, and several test runs
# (two `make check`s in CI) share one Postgres whose max_connections is 100 by default.
# Their queues are long: tests that send hundreds of requests at once are about concurrency,
# and the shedding tests (test_bounded_work) set a short queue of their own.
TEST_POOLS = {"db_pool_size": 4, "db_max_overflow": 2, "db_queue_limit": 1000}
# The per-second budgets for new documents and plans protect a server from a flood; tests
# send hundreds of new documents a second on purpose, so theirs are wide (test_bounded_work
# sets its own, on a clock it controls).
TEST_BUDGETS = {"compiles_per_second": 100_000.0, "new_document_bytes_per_second": 10**9}


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None, database_url=database_url, **{**TEST_POOLS, **TEST_BUDGETS, **overrides}
    )


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database, EngineOptions(pool_size=2))
    yield engine
    await engine.dispose()


# Every mapped table but the row counts (kept right by the tables' own TRUNCATE triggers):
# the catalogue's entities, and what requests store (persisted documents, idempotency keys).
CATALOGUE_TABLES = ", ".join(
    table.name for table in Base.metadata.sorted_tables if table.name != "row_counts"
)


@pytest.fixture
async def empty_catalog(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {CATALOGUE_TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture(autouse=True)
def _start_clean(request: pytest.FixtureRequest) -> None:
    """Every test that touches the catalogue starts from empty tables and fresh ids."""
    if {"engine", "client", "resolver_client"} & set(request.fixturenames):
        request.getfixturevalue("empty_catalog")


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """The app for `settings`, lifespan run, with a client that speaks HTTP to it."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, app)


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[GraphQLClient]:
    async with serving(settings) as client:
        yield client


@pytest.fixture(scope="session")
async def resolver_client(database_url: str) -> AsyncIterator[GraphQLClient]:
    """The same app with the query planner off: every field goes through its resolver."""
    async with serving(make_settings(database_url, query_planner=False)) as client:
        yield client
