"""Find a Postgres for the tests: TEST_DATABASE_URL, else the one at 127.0.0.1:5432."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from api.db.urls import parse_database_url
from tests.stale_databases import sweep, this_process

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


async def _reachable(url: str) -> bool:
    target = parse_database_url(url)
    try:
        connection = await asyncpg.connect(
            target.url.render_as_string(hide_password=False).replace("+asyncpg", ""),
            timeout=3,
            **target.connect_args,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await connection.close()
    return True


async def admin_url() -> str | None:
    """TEST_DATABASE_URL, else the local server if it answers; None when there is neither."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    if await _reachable(DEFAULT_ADMIN_URL):
        return DEFAULT_ADMIN_URL
    return None


async def admin_url_or_embedded() -> str:
    """For the benchmarks: the same, else an embedded server kept in .pgdata-test."""
    found = await admin_url()
    if found is not None:
        return found
    from api.db.embedded import start_embedded_postgres

    server = await asyncio.to_thread(start_embedded_postgres, PROJECT_ROOT / ".pgdata-test")
    return server.url


def with_database(url: str, database: str) -> str:
    target = parse_database_url(url)
    query = f"?host={target.connect_args['host']}" if "host" in target.connect_args else ""
    base = target.url.set(drivername="postgresql", database=database)
    return base.render_as_string(hide_password=False) + query


@asynccontextmanager
async def admin_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    target = parse_database_url(url)
    connection = await asyncpg.connect(
        target.url.render_as_string(hide_password=False).replace("+asyncpg", ""),
        **target.connect_args,
    )
    try:
        yield connection
    finally:
        await connection.close()


async def admin_execute(url: str, *statements: str) -> None:
    async with admin_connection(url) as connection:
        for statement in statements:
            await connection.execute(statement)


async def create_database(admin: str, prefix: str = "catalog_test") -> str:
    """A new, empty database, marked with this process as its creator; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    comment = this_process().comment().replace("'", "''")
    await admin_execute(
        admin, f'CREATE DATABASE "{name}"', f"COMMENT ON DATABASE \"{name}\" IS '{comment}'"
    )
    return with_database(admin, name)


async def sweep_stale_databases(admin: str) -> list[str]:
    """Drop what killed test runs left behind (see tests/stale_databases.py)."""
    async with admin_connection(admin) as connection:
        return await sweep(connection)


async def drop_database(admin: str, url: str) -> None:
    name = parse_database_url(url).url.database
    await admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
