"""A throwaway primary and a real streaming replica of it, built from this machine's Postgres.

The primary is a new cluster (`initdb`) in a temporary directory, listening on 127.0.0.1 at a
port the kernel picked; the replica is `pg_basebackup -R` of it, a hot standby streaming from
it and replaying each commit `recovery_min_apply_delay` late, as a replica that lags. Postgres
refuses to run as root, so as root both run as an unprivileged user. Without the binaries (or
such a user) the caller is skipped, or failed when `CI` is set: CI must run these.
"""

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pgbouncer import free_port, unprivileged_user

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
COMMAND_TIMEOUT = 60.0


def find_bindir() -> Path | None:
    """The directory of the machine's Postgres server binaries (Debian: under /usr/lib)."""
    found = shutil.which("initdb")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in TOOLS):
            return bindir
    return None


def require_bindir() -> Path:
    """The binaries, else skip with the reason (or fail under CI, where they must be there)."""
    bindir = find_bindir()
    reason = None
    if bindir is None:
        reason = f"no Postgres server binaries ({', '.join(TOOLS)}) to build a streaming replica"
    elif os.geteuid() == 0:
        try:
            unprivileged_user()
        except RuntimeError as error:
            reason = f"cannot build a streaming replica: {error}"
    if reason is None and bindir is not None:
        return bindir
    reason = f"{reason}; the read-replica tests need them (apt-get install postgresql)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass
class Cluster:
    """One Postgres server of the pair, run with pg_ctl."""

    bindir: Path
    pgdata: Path
    port: int
    user: str | None  # the OS user it runs as; None: this one

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str) -> None:
        completed = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            user=self.user,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{completed.stderr}")

    def start(self) -> None:
        log = self.pgdata.parent / f"{self.pgdata.name}.log"
        self.run("pg_ctl", "-D", str(self.pgdata), "-l", str(log), "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: sessions are cut, as when a compute goes away."""
        if (self.pgdata / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "fast", "stop")

    def configure(self, **settings: str) -> None:
        """Settings appended to postgresql.auto.conf, read last, so they win."""
        with (self.pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())


@contextmanager
def primary_and_replica(apply_delay: str) -> Iterator[tuple[Cluster, Cluster]]:
    """Both servers started; everything stopped and deleted when the block ends."""
    bindir = require_bindir()
    user = unprivileged_user() if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="catalog-replica-"))
    if user is not None:
        shutil.chown(base, user)
    primary = Cluster(bindir, base / "primary", free_port(), user)
    replica = Cluster(bindir, base / "replica", free_port(), user)
    try:
        primary.run(
            "initdb",
            *("-D", str(primary.pgdata), "-U", "postgres", "--auth=trust", "--no-sync"),
            *("-E", "UTF8", "--locale=C"),
        )
        # initdb's pg_hba.conf trusts replication connections from 127.0.0.1 already.
        primary.configure(
            listen_addresses="127.0.0.1",
            port=str(primary.port),
            unix_socket_directories=str(base),
            fsync="off",
            wal_level="replica",
            max_wal_senders="4",
            max_connections="60",
            shared_buffers="16MB",
        )
        primary.start()
        replica.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.pgdata), "-R", "-X", "stream", "--no-sync"),
        )
        replica.configure(
            port=str(replica.port),
            hot_standby="on",
            recovery_min_apply_delay=apply_delay,
        )
        replica.start()
        yield primary, replica
    finally:
        for cluster in (replica, primary):
            with suppress(RuntimeError, subprocess.SubprocessError):  # deleted all the same
                cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
