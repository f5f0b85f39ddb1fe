"""MIGRATE_ON_START: `serve` migrates an empty database before it answers (off by default)."""

import asyncio
import os
import sys

import httpx

from tests.postgres import create_database, drop_database
from tests.test_shutdown import DEADLINE, PROJECT_ROOT, free_port, wait_until


async def readiness_after_start(database_url: str, *, migrate_on_start: bool) -> int:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "API_", "MIGRATE_"))
    }
    env |= {
        "DATABASE_URL": database_url,
        "MIGRATE_ON_START": str(migrate_on_start).lower(),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", "serve", "--port", str(port),
        cwd=PROJECT_ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, "the server answers")
            return (await http.get("/readyz")).status_code
    finally:
        server.terminate()
        await server.wait()


async def test_serve_migrates_first_when_asked(postgres_admin_url: str) -> None:
    url = await create_database(postgres_admin_url, prefix="catalog_onstart")
    try:
        assert await readiness_after_start(url, migrate_on_start=False) == 503
        assert await readiness_after_start(url, migrate_on_start=True) == 200
    finally:
        await drop_database(postgres_admin_url, url)
