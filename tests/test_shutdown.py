"""Graceful shutdown of the real server: SIGTERM lets the request in flight finish, then the
pool is given back to Postgres."""

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.urls import parse_database_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


async def test_sigterm_finishes_the_request_in_flight_then_closes_the_pool(
    database_url: str, engine: AsyncEngine
) -> None:
    name = f"shutdown-{uuid.uuid4().hex[:8]}"
    separator = "&" if "?" in database_url else "?"
    url = f"{database_url}{separator}application_name={name}"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "API_", "MIGRATE_"))
    }
    env |= {"DATABASE_URL": url, "LOG_FORMAT": "text", "PYTHONPATH": str(PROJECT_ROOT)}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", "serve", "--port", str(port),
        cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    dsn, args = plain_dsn(database_url)
    locker = await asyncpg.connect(dsn, **args)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, "the server answers")
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
        # uvicorn shuts down cleanly, then re-raises the signal it caught, as a process should.
        assert code in (0, -signal.SIGTERM), (await server.stderr.read()).decode()  # type: ignore[union-attr]
        assert await backends(database_url, name) == [], "the pool was not disposed"
    finally:
        await locker.close()
        if server.returncode is None:
            server.kill()
            await server.wait()
