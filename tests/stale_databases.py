"""Databases left behind by test runs that were killed, and how to tell them from live ones.

Several runs may share one Postgres at once (two `make check`s in CI). Each database a run
creates carries a comment naming its creator: host, pid and the pid's start time (a pid
alone may have been reused). A database is stale when nobody is connected to it and either
its creator is gone or it is more than a day old. Databases from before these comments are
swept by age alone, when the server lets us read it.
"""

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import psutil

MARKER = "catalogue test run: "
MAX_AGE_SECONDS = 24 * 3600
# Names older runs gave their databases, before they carried a comment.
LEGACY_PREFIXES = (
    "catalog_test_",
    "catalog_http_",
    "catalog_onstart_",
    "catalog_migrations_",
    "catalog_obs_",
    "catalog_stale_",
    "catalog_bench_",
)


@dataclass(frozen=True)
class Creator:
    host: str
    pid: int
    pid_started: float
    created: float

    def comment(self) -> str:
        return MARKER + json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_comment(cls, comment: str | None) -> "Creator | None":
        if not comment or not comment.startswith(MARKER):
            return None
        try:
            fields: dict[str, Any] = json.loads(comment.removeprefix(MARKER))
            return cls(
                host=str(fields["host"]),
                pid=int(fields["pid"]),
                pid_started=float(fields["pid_started"]),
                created=float(fields["created"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def is_gone(self) -> bool:
        """True only when we can see the creator is dead: same host, and its pid is free or
        belongs to a process started at another time."""
        if self.host != socket.gethostname():
            return False
        try:
            process = psutil.Process(self.pid)
            started = float(process.create_time())
            zombie = process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        return zombie or abs(started - self.pid_started) > 1.0


def this_process() -> Creator:
    started = float(psutil.Process(os.getpid()).create_time())
    return Creator(socket.gethostname(), os.getpid(), started, time.time())


def is_stale(creator: Creator | None, name: str, age: float | None, now: float) -> bool:
    """Whether a database nobody is connected to may be dropped."""
    if creator is not None:
        return creator.is_gone() or now - creator.created > MAX_AGE_SECONDS
    return name.startswith(LEGACY_PREFIXES) and age is not None and age > MAX_AGE_SECONDS


async def _legacy_age(connection: asyncpg.Connection, oid: int) -> float | None:
    """Seconds since the database's files were made, if the server lets us read them."""
    try:
        modified = await connection.fetchval(
            "SELECT extract(epoch FROM now() - (pg_stat_file($1)).modification)",
            f"base/{oid}/PG_VERSION",
        )
    except asyncpg.PostgresError:
        return None
    return float(modified) if modified is not None else None


async def sweep(connection: asyncpg.Connection) -> list[str]:
    """Drop the stale databases on `connection`'s server; returns their names."""
    rows = await connection.fetch(
        """
        SELECT d.oid, d.datname, shobj_description(d.oid, 'pg_database') AS comment
        FROM pg_database d
        WHERE NOT d.datistemplate AND d.datname <> current_database()
          AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)
        """
    )
    now = time.time()
    dropped = []
    for row in rows:
        creator = Creator.from_comment(row["comment"])
        if creator is None and not row["datname"].startswith(LEGACY_PREFIXES):
            continue
        age = None if creator is not None else await _legacy_age(connection, row["oid"])
        if not is_stale(creator, row["datname"], age, now):
            continue
        try:
            # Not WITH (FORCE): if anyone connected since we looked, the database stays.
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}"')
        except asyncpg.ObjectInUseError:
            continue
        dropped.append(row["datname"])
    return dropped
