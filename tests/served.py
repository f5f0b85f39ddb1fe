"""The real server in a subprocess (`python -m api serve`), for tests of process behaviour."""

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 30.0


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


RUNNING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Served:
    process: asyncio.subprocess.Process
    http: httpx.AsyncClient
    stderr: bytearray = field(default_factory=bytearray)

    def output(self) -> str:
        return self.stderr.decode(errors="replace")


async def _listening_port(process: asyncio.subprocess.Process, stderr: bytearray) -> int:
    """The port uvicorn bound (it was told port 0: the kernel picks one nobody else holds,
    where a port probed free beforehand may be taken by another test run in between)."""
    assert process.stderr is not None
    while True:
        line = await process.stderr.readline()
        if not line:
            raise AssertionError(f"the server exited before listening:\n{stderr.decode()}")
        stderr += line
        found = RUNNING.search(line)
        if found:
            return int(found.group(1))


async def _drain(process: asyncio.subprocess.Process, stderr: bytearray) -> None:
    """Keep reading the server's log, so a full pipe never blocks it."""
    assert process.stderr is not None
    while chunk := await process.stderr.read(65536):
        stderr += chunk


def served(**settings: str) -> AbstractAsyncContextManager[Served]:
    """The server with these settings (and none inherited), once it answers /healthz."""
    return served_from(PROJECT_ROOT, **settings)


@asynccontextmanager
async def served_from(
    code: Path, /, python: str = sys.executable, **settings: str
) -> AsyncIterator[Served]:
    """The same, run from the checkout `code` (another commit's, for compatibility tests),
    with `python` (that commit's own environment, when it differs from this one)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "API_", "MIGRATE_"))
    }
    env |= {"PYTHONPATH": str(code), "LOG_FORMAT": "text", **settings}
    process = await asyncio.create_subprocess_exec(
        python, "-m", "api", "serve", "--port", "0",
        cwd=code, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stderr = bytearray()
    drain: asyncio.Task[None] | None = None
    try:
        port = await asyncio.wait_for(_listening_port(process, stderr), DEADLINE)
        drain = asyncio.create_task(_drain(process, stderr))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, "the server answers")
            yield Served(process, http, stderr)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if drain is not None:
            await drain
