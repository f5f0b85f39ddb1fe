"""A Postgres cluster of the tests' own, which they may stop and start like a Neon compute.

`pgserver` initialises a temporary data directory and starts a server on a Unix socket in it.
Stopping runs `pg_ctl stop` (fast mode: sessions are cut, as when a compute suspends); starting
again reuses the same data directory and socket directory, so the URL does not change.
"""

import atexit
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset; the tests turn that into an error.
    warnings.simplefilter("ignore", UserWarning)
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer, get_server

STOP_TIMEOUT_SECONDS = 20.0


class ThrowawayPostgres:
    """One cluster in a temporary directory; `url` stays the same across stop and start."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.pgdata = base_dir / "pgdata"
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """`postgresql://postgres:@/postgres?host=<socket dir>`; known once first started."""
        if self._url is None:
            raise RuntimeError("the cluster was never started")
        return self._url

    @property
    def running(self) -> bool:
        return self._server is not None and self._postmaster_running()

    def _postmaster_running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server (initialising the data directory the first time); blocks until ready."""
        if self._server is None:
            # cleanup_mode=None: this class, not pgserver's atexit hook, stops and deletes it.
            self._server = get_server(self.pgdata, cleanup_mode=None)
            self._configure()
        else:
            with self._server._lock:
                self._server.ensure_postgres_running()
        url = str(self._server.get_uri())
        if self._url is not None and url != self._url:
            raise RuntimeError(f"the cluster came back at {url}, not {self._url}")
        self._url = url

    def _configure(self) -> None:
        """Settings for a disposable cluster: no fsync, so shutdown checkpoints are quick.

        A clean shutdown still writes everything out, so committed data survives a restart.
        """
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/throwaway_postgres.py\nfsync = off\n")
        self._pg_ctl("reload")

    def stop(self) -> None:
        """Stop the server, cutting every session (`pg_ctl stop -m fast`); blocks until down."""
        if self._server is None or not self._postmaster_running():
            return
        try:
            self._pg_ctl("-w", "-m", "fast", "stop")
        except subprocess.CalledProcessError:
            if self._postmaster_running():  # not merely stopped by itself meanwhile
                raise

    def begin_smart_stop(self) -> None:
        """Start a smart shutdown and return at once: new connections are refused with
        "the database system is shutting down" until the open sessions end, then it stops.
        """
        if self._server is None or not self._postmaster_running():
            raise RuntimeError("the cluster is not running")
        self._pg_ctl("-W", "-m", "smart", "stop")

    def _pg_ctl(self, *args: str) -> None:
        assert self._server is not None
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self._server.system_user,
            timeout=STOP_TIMEOUT_SECONDS,
        )

    def delete(self) -> None:
        """Stop the server if it runs, then remove every file of the cluster."""
        try:
            if self._server is not None and self._postmaster_running():
                self._pg_ctl("-w", "-m", "immediate", "stop")  # no checkpoint: all is deleted
        except subprocess.SubprocessError:
            self._kill()
        if self._server is not None:
            atexit.unregister(self._server._cleanup)
            PostgresServer._instances.pop(self._server.pgdata, None)
            self._server = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _kill(self) -> None:
        info = self._server.get_postmaster_info() if self._server is not None else None
        if info is not None and info.process is not None and info.process.is_running():
            info.process.kill()


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started cluster in a new temporary directory, deleted when the block ends."""
    cluster = ThrowawayPostgres(Path(tempfile.mkdtemp(prefix="catalog-faults-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.delete()
