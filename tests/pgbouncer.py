"""A real PgBouncer in transaction mode, as Neon's pooled endpoint runs it, for the tests.

`running_pgbouncer(admin_url)` starts one in front of the Postgres the tests use and stops it
on exit; `PgBouncer.url_for(database_url)` is the same database reached through it. With no
`pgbouncer` binary the caller is skipped, or failed when `CI` is set: CI must run these.
"""

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from api.db.urls import parse_database_url

SEARCH_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
READY_TIMEOUT_SECONDS = 15.0
START_ATTEMPTS = 3  # another process may take the free port before PgBouncer binds it
# PgBouncer refuses to run as root; Debian's postgres and pgbouncer packages create these.
UNPRIVILEGED_USERS = ("postgres", "pgbouncer", "nobody")
# The user PgBouncer logs clients in as (trust: any password) and connects to Postgres as.
DATABASE_USER = "postgres"


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in SEARCH_PATHS if os.access(path, os.X_OK)), None)


def require_pgbouncer() -> str:
    """The binary, else skip with the reason (or fail under CI, where it must be installed)."""
    binary = find_pgbouncer()
    if binary is not None:
        return binary
    reason = (
        "pgbouncer is not installed, so the pooled-mode (transaction pooling) tests cannot "
        "run: `make test-services` installs it as root, or `apt-get install pgbouncer`"
    )
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def unprivileged_user() -> str:
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(f"running as root, and none of {UNPRIVILEGED_USERS} exists")


def upstream_of(admin_url: str) -> tuple[str, int]:
    """Host (or Unix socket directory) and port of the Postgres behind `admin_url`."""
    target = parse_database_url(admin_url)
    host = str(target.connect_args.get("host") or target.url.host)
    port = int(target.connect_args.get("port") or target.url.port or 5432)
    return host, port


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PgBouncer:
    process: subprocess.Popen[bytes]
    directory: Path
    port: int
    pool_size: int

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url_for(self, database_url: str) -> str:
        """`database_url`'s database and user, reached through this PgBouncer over TCP."""
        url = parse_database_url(database_url).url
        through = url.set(drivername="postgresql", host="127.0.0.1", port=self.port)
        return through.render_as_string(hide_password=False)


def config_text(*, port: int, upstream: tuple[str, int], pool_size: int, auth_file: Path) -> str:
    host, server_port = upstream
    return "\n".join(
        [
            "[databases]",
            # Any database name the client asks for, on the tests' Postgres.
            f"* = host={host} port={server_port}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {auth_file}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "min_pool_size = 0",
            "reserve_pool_size = 0",
            "max_client_conn = 200",
            "server_login_retry = 1",
            "",
        ]
    )


def write_config(directory: Path, *, port: int, upstream: tuple[str, int], pool_size: int) -> Path:
    auth_file = directory / "userlist.txt"
    auth_file.write_text(f'"{DATABASE_USER}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        config_text(port=port, upstream=upstream, pool_size=pool_size, auth_file=auth_file)
    )
    # PgBouncer reads these after it has dropped root.
    directory.chmod(0o755)
    for path in (auth_file, config):
        path.chmod(0o644)
    return config


@contextmanager
def _process(binary: str, config: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [binary, str(config)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", unprivileged_user()]
    with (config.parent / "pgbouncer.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # safe shutdown: no client is left by now
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def _ready(bouncer: PgBouncer, admin_url: str) -> bool:
    """Wait until a query through PgBouncer reaches Postgres (more than an open port);
    False if PgBouncer exited first (its port was taken, say)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    dsn = bouncer.url_for(admin_url)
    while True:
        if bouncer.process.poll() is not None:
            return False
        try:
            connection = await asyncpg.connect(dsn, timeout=2, statement_cache_size=0)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer never got ready ({error!r}):\n{bouncer.log()}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        try:
            value = await connection.fetchval("SELECT 1")
        finally:
            await connection.close()
        if value != 1:
            raise RuntimeError(f"pgbouncer answered SELECT 1 with {value!r}")
        return True


@asynccontextmanager
async def running_pgbouncer(admin_url: str, *, pool_size: int = 3) -> AsyncIterator[PgBouncer]:
    """PgBouncer in transaction mode, with `pool_size` server connections per database, in
    front of `admin_url`'s server; ready when entered, stopped on exit."""
    binary = require_pgbouncer()
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as name:
        directory = Path(name)
        for _ in range(START_ATTEMPTS):
            port = free_port()
            config = write_config(
                directory, port=port, upstream=upstream_of(admin_url), pool_size=pool_size
            )
            with _process(binary, config) as process:
                bouncer = PgBouncer(process, directory, port, pool_size)
                if await _ready(bouncer, admin_url):
                    yield bouncer
                    return
        raise RuntimeError(f"pgbouncer did not start:\n{bouncer.log()}")


def kill(bouncer: PgBouncer) -> None:
    """SIGKILL, as a crashed or OOM-killed pooler: every connection through it drops at once."""
    bouncer.process.kill()
    bouncer.process.wait(timeout=5)


@asynccontextmanager
async def restarted(bouncer: PgBouncer, admin_url: str) -> AsyncIterator[PgBouncer]:
    """`bouncer` started again after it died: same configuration, same port, so clients that
    held its URL reach it again; ready when entered, stopped on exit."""
    binary = require_pgbouncer()
    with _process(binary, bouncer.directory / "pgbouncer.ini") as process:
        again = PgBouncer(process, bouncer.directory, bouncer.port, bouncer.pool_size)
        if not await _ready(again, admin_url):
            raise RuntimeError(f"pgbouncer did not start again:\n{again.log()}")
        yield again
