"""The sweep at the start of a run drops what killed runs left, and nothing a live run uses."""

import socket
import subprocess
import time
import uuid
from dataclasses import replace

import asyncpg
import psutil
import pytest

from tests.postgres import admin_connection, drop_database, sweep_stale_databases, with_database
from tests.stale_databases import MAX_AGE_SECONDS, Creator, this_process


def dead_creator() -> Creator:
    """A process of this host that has exited."""
    process = subprocess.Popen(["sleep", "60"])
    started = float(psutil.Process(process.pid).create_time())
    process.kill()
    process.wait()
    return Creator(socket.gethostname(), process.pid, started, time.time())


async def create_marked(admin: str, creator: Creator | None, label: str) -> str:
    name = f"catalog_test_sweep_{label}_{uuid.uuid4().hex[:6]}"
    async with admin_connection(admin) as connection:
        await connection.execute(f'CREATE DATABASE "{name}"')
        if creator is not None:
            comment = creator.comment().replace("'", "''")
            await connection.execute(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
    return name


async def existing(admin: str, names: list[str]) -> set[str]:
    async with admin_connection(admin) as connection:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names
        )
    return {row["datname"] for row in rows}


@pytest.mark.slow  # ~15 s: left out by `make test-fast`
async def test_sweep_drops_only_databases_whose_creator_is_gone_or_that_are_old(
    postgres_admin_url: str,
) -> None:
    live = this_process()
    long_ago = time.time() - MAX_AGE_SECONDS - 60
    cases = {
        "dead": (dead_creator(), True),
        "live": (live, False),
        "pid_reused": (replace(live, pid_started=live.pid_started - 100), True),
        "old": (replace(live, created=long_ago), True),
        "other_host": (replace(dead_creator(), host="elsewhere.invalid"), False),
        "unmarked_new": (None, False),  # from before the marks: only its age could tell
        "dead_in_use": (dead_creator(), False),
    }
    names = {
        label: await create_marked(postgres_admin_url, c, label) for label, (c, _) in cases.items()
    }
    holder = await asyncpg.connect(with_database(postgres_admin_url, names["dead_in_use"]))
    try:
        dropped = await sweep_stale_databases(postgres_admin_url)

        left = await existing(postgres_admin_url, list(names.values()))
        expected_gone = {names[label] for label, (_, stale) in cases.items() if stale}
        assert expected_gone <= set(dropped)
        assert left == set(names.values()) - expected_gone
    finally:
        await holder.close()
        for name in names.values():
            await drop_database(postgres_admin_url, with_database(postgres_admin_url, name))


async def test_a_run_database_is_marked_with_its_creator(database_url: str) -> None:
    async with admin_connection(database_url) as connection:
        comment = await connection.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        )
    creator = Creator.from_comment(comment)

    assert creator is not None, comment
    assert (creator.host, creator.pid) == (socket.gethostname(), this_process().pid)
    assert not creator.is_gone()
