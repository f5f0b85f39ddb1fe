"""The real server in a subprocess (`python -m api serve`), for tests of process behaviour."""

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


@dataclass
class Served:
    process: asyncio.subprocess.Process
    http: httpx.AsyncClient


def served(**settings: str) -> AbstractAsyncContextManager[Served]:
    """The server with these settings (and none inherited), once it answers /healthz."""
    return served_from(PROJECT_ROOT, **settings)


@asynccontextmanager
async def served_from(code: Path, /, **settings: str) -> AsyncIterator[Served]:
    """The same, run from the checkout `code` (another commit's, for compatibility tests)."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "API_", "MIGRATE_"))
    }
    env |= {"PYTHONPATH": str(code), "LOG_FORMAT": "text", **settings}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", "serve", "--port", str(port),
        cwd=code, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, "the server answers")
            yield Served(process, http)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
