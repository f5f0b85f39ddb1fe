"""Graceful shutdown of the real server: SIGTERM lets the request in flight finish, then the
pool is given back to Postgres."""

import asyncio
import signal
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.urls import parse_database_url
from tests.served import DEADLINE, served, wait_until

# `make test-fast` leaves these out: a served process, SIGTERM mid-request, the drain (~13 s).
pytestmark = pytest.mark.slow


def plain_dsn(url: str) -> tuple[str, dict[str, Any]]:
    target = parse_database_url(url)
    return target.url.set(drivername="postgresql").render_as_string(False), target.connect_args


async def backends(url: str, application_name: str) -> list[str]:
    dsn, args = plain_dsn(url)
    connection = await asyncpg.connect(dsn, **args)
    try:
        rows = await connection.fetch(
            "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
    finally:
        await connection.close()
    return [row["wait_event_type"] or "" for row in rows]


async def test_sigterm_finishes_the_request_in_flight_then_closes_the_pool(
    database_url: str, engine: AsyncEngine
) -> None:
    name = f"shutdown-{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in database_url else "?"
    dsn, args = plain_dsn(database_url)
    locker = await asyncpg.connect(dsn, **args)
    try:
        async with served(DATABASE_URL=f"{database_url}{separator}application_name={name}") as app:
            server, http = app.process, app.http
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE authors IN ACCESS EXCLUSIVE MODE")
            in_flight = asyncio.create_task(
                http.post("/graphql", json={"query": "{ authors { totalCount } }"})
            )

            async def blocked() -> bool:
                return "Lock" in await backends(database_url, name)

            await wait_until(blocked, "the request waits on the lock")
            server.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert server.returncode is None, "the server quit with a request in flight"
            await transaction.commit()

            response = await in_flight
            assert response.status_code == 200
            assert response.json() == {"data": {"authors": {"totalCount": 0}}}
            code = await asyncio.wait_for(server.wait(), DEADLINE)
            # uvicorn shuts down cleanly, then re-raises the signal it caught, as it should.
            assert code in (0, -signal.SIGTERM), app.output()
        assert await backends(database_url, name) == [], "the pool was not disposed"
    finally:
        await locker.close()
