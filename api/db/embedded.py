"""An embedded Postgres (from the `pgserver` wheel) for laptops with no database configured.

pgserver counts the processes using a data directory in `.handle_pids.json` and stops the
server when the last one exits. A process killed without running its exit hooks (a closed
terminal sends SIGHUP) stays in that list, so the server would outlive it and never be
stopped again. Dead processes are struck off the list before the server is started or adopted.
"""

import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

HANDLES_FILE = ".handle_pids.json"
POSTMASTER_PID_FILE = "postmaster.pid"

_servers: list[Any] = []  # keep handles alive: pgserver stops the server when they are collected


def _pgserver() -> Any:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils
    # Its records span many lines (every pg_ctl command with its output, the server's whole
    # log on a failure); a failure reaches us as an exception, told in one line.
    logging.getLogger("pgserver").setLevel(logging.CRITICAL)
    return pgserver


class EmbeddedPostgresFailed(RuntimeError):
    """The server could not be started; the message says where its log is."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    url: str
    pid: int
    how: Literal["started", "adopted", "shared"]
    """`adopted`: left running by a process that was killed; `shared`: another live process
    uses it too, and the last one to exit stops it."""


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the server running on `data_dir`, if one is running."""
    try:
        first_line = (data_dir / POSTMASTER_PID_FILE).read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def _strike_dead_handles(data_dir: Path) -> list[int]:
    """Drop the processes that died without letting go of the server; the live ones remain."""
    handles_file = data_dir / HANDLES_FILE
    try:
        pids: list[int] = _pgserver().utils.DiskList(handles_file).get()
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if pid != os.getpid() and psutil.pid_exists(pid)]
    if alive != pids and handles_file.exists():
        _pgserver().utils.DiskList(handles_file).put(alive)
    return alive


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or adopt) a Postgres whose data lives in `data_dir`.

    It listens on a Unix socket only. Call `stop_embedded_postgres` when done; it also stops
    at interpreter exit, unless another live process still uses it.
    """
    pgserver = _pgserver()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with pgserver.PostgresServer._lock:
            sharing = _strike_dead_handles(data_dir)
            running_before = postmaster_pid(data_dir)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    except subprocess.CalledProcessError as error:
        command = Path(str(error.cmd[0])).name if error.cmd else "a command"
        raise EmbeddedPostgresFailed(
            f"the embedded Postgres in {data_dir} did not start ({command} exited with "
            f"status {error.returncode}); its log: {data_dir / 'log'}"
        ) from None
    except (subprocess.TimeoutExpired, OSError) as error:
        raise EmbeddedPostgresFailed(
            f"the embedded Postgres in {data_dir} did not start ({error})"
        ) from None
    _servers.append(server)
    how: Literal["started", "adopted", "shared"] = "started"
    if running_before is not None:
        how = "shared" if sharing else "adopted"
    return EmbeddedPostgres(url=str(server.get_uri()), pid=int(server.get_pid()), how=how)


def stop_embedded_postgres() -> None:
    """Let go of the servers this process started or adopted; the last user stops each one."""
    while _servers:
        _servers.pop().cleanup()


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """The server for the length of the block, stopped however the block ends."""
    server = start_embedded_postgres(data_dir)
    try:
        yield server
    finally:
        stop_embedded_postgres()
