"""`python -m api dev` with no database configured: its embedded Postgres never outlives it."""

import asyncio
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from api.cli import database_url_configured
from api.db.embedded import postmaster_pid
from tests.served import RUNNING
from tests.test_cli import environment, run_cli, single_error_line

# initdb, migrations and the demo seed on a busy two-core machine.
START_DEADLINE = 180.0
EXIT_DEADLINE = 60.0


@dataclass
class Dev:
    process: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


async def until(predicate: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


async def gone(pid: int | None, within: float = 10) -> None:
    async def stopped() -> bool:
        return not alive(pid)

    await until(stopped, f"process {pid} stops", within)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory straight under the system's temporary one, not pytest's `tmp_path`:
    as root the server runs as another user and must reach it, and every pytest run (another
    `make check` beside this one, say) resets pytest's base directory to mode 0700.

    A server still running there when the test ends (it failed) is stopped.
    """
    scratch = Path(tempfile.mkdtemp(prefix="catalog-dev-"))
    try:
        yield scratch / "pgdata"
    finally:
        leftover = postmaster_pid(scratch / "pgdata")
        if alive(leftover):
            with suppress(psutil.NoSuchProcess):
                psutil.Process(leftover).terminate()
        shutil.rmtree(scratch, ignore_errors=True)


@asynccontextmanager
async def dev(workdir: Path, data_dir: Path, name: str) -> AsyncIterator[Dev]:
    """`python -m api dev` in `workdir`, once it answers /healthz; killed if still running."""
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api", "dev", "--port", "0",
            cwd=workdir, env=environment(EMBEDDED_PGDATA=str(data_dir), LOG_FORMAT="text"),
            stdout=sink, stderr=sink,
        )  # fmt: skip
    running = Dev(process, log)
    try:
        port = 0

        async def listening() -> bool:
            nonlocal port
            assert process.returncode is None, running.output()
            found = RUNNING.search(log.read_bytes())
            port = int(found.group(1)) if found else 0
            return found is not None

        await until(listening, "dev listens", START_DEADLINE)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def answers() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(answers, "dev answers /healthz", START_DEADLINE)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stops(running: Dev) -> int:
    return await asyncio.wait_for(running.process.wait(), EXIT_DEADLINE)


async def test_sighup_stops_dev_and_its_embedded_postgres(tmp_path: Path, data_dir: Path) -> None:
    async with dev(tmp_path, data_dir, "first") as running:
        pid = postmaster_pid(data_dir)
        assert alive(pid)
        assert "started the embedded Postgres in" in running.output()

        running.process.send_signal(signal.SIGHUP)  # a closed terminal
        code = await stops(running)

        assert code == 128 + signal.SIGHUP, running.output()
        await gone(pid)
        assert postmaster_pid(data_dir) is None


async def test_a_server_left_by_a_killed_run_is_reused_and_then_stopped(
    tmp_path: Path, data_dir: Path
) -> None:
    async with dev(tmp_path, data_dir, "killed") as running:
        pid = postmaster_pid(data_dir)
        running.process.kill()  # no exit hooks run, as when a terminal's group is killed
        await stops(running)
    assert alive(pid), "the killed run took its server with it"

    async with dev(tmp_path, data_dir, "second") as second:
        assert postmaster_pid(data_dir) == pid
        assert f"reusing the embedded Postgres already running in {data_dir}" in second.output()
        assert "started the embedded Postgres" not in second.output()

        second.process.send_signal(signal.SIGTERM)
        code = await stops(second)

        assert code == 128 + signal.SIGTERM, second.output()
        await gone(pid)


def test_an_embedded_postgres_that_cannot_start_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("1\n")  # a data directory no server can run

    finished = run_cli(tmp_path, "dev", "--port", "0", EMBEDDED_PGDATA=str(data_dir))

    line = single_error_line(finished)
    assert line.startswith(f"error: the embedded Postgres in {data_dir} did not start ("), line
    assert line.endswith(f"; its log: {data_dir / 'log'}"), line


async def test_a_dotenv_without_database_url_keeps_the_embedded_postgres(
    tmp_path: Path, data_dir: Path
) -> None:
    """CORS_ORIGINS is the first thing a frontend developer puts in `.env`; the embedded
    database stays, and the `.env` is read."""
    origin = "http://localhost:5173"
    (tmp_path / ".env").write_text(f"# the frontend's dev server\nCORS_ORIGINS={origin}\n")
    async with dev(tmp_path, data_dir, "dotenv") as running:
        assert "started the embedded Postgres in" in running.output()
        assert "DATABASE_URL is not set" not in running.output()
        found = RUNNING.search(running.log.read_bytes())
        assert found is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{int(found.group(1))}") as http:
            preflight = await http.options(
                "/graphql",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
            )
        assert preflight.headers.get("access-control-allow-origin") == origin

        running.process.send_signal(signal.SIGTERM)
        assert await stops(running) == 128 + signal.SIGTERM, running.output()
    assert postmaster_pid(data_dir) is None


@pytest.mark.parametrize(
    ("dotenv", "configured"),
    [
        pytest.param(None, False, id="no .env"),
        pytest.param("CORS_ORIGINS=http://localhost:5173\n", False, id="other settings"),
        pytest.param("DATABASE_URL=\n", False, id="empty"),
        pytest.param("DATABASE_URL=postgresql://app@db/catalog\n", True, id="set"),
        pytest.param("database_url=postgresql://app@db/catalog\n", True, id="lower case"),
    ],
)
def test_database_url_is_looked_for_in_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dotenv: str | None, configured: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    assert database_url_configured() is configured
