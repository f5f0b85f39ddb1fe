"""Migrate under live traffic: lock waits stay short, and a lost race ends in one line."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from alembic import command
from api.db.engine import EngineOptions, create_engine
from api.db.migration_lock import APPLICATION_NAME
from api.db.migrations import code_lineage
from tests.conftest import make_settings, serving
from tests.factories import insert_authors
from tests.scratch_revisions import ScratchScripts, project_head
from tests.test_cli import Finished, run_cli_async, single_error_line
from tests.test_migrations import fresh_url, rows, target_for, versions

# `make test-fast` leaves these out: migrations under a load of long readers (about 10 s).
pytestmark = pytest.mark.slow

__all__ = ["fresh_url"]

READER = "long-reader"
# The reader holds ACCESS SHARE on authors until the migration has queued behind it this
# many times (each attempt waits at most 1 s), or for at most the 20 s.
QUEUED_ATTEMPTS = 3
HOLD_SECONDS = 20.0
MAX_READ_WAIT = 2.5
AUTHORS_QUERY = "{ authors(first: 3) { totalCount edges { node { name } } } }"


@pytest.fixture
async def scripts(fresh_url: str, tmp_path: Path) -> ScratchScripts:
    """A database at the project's head, with one revision to go that locks authors."""
    scripts = ScratchScripts(tmp_path / "scripts")
    scripts.add(
        "scratch_nickname",
        upgrade='op.add_column("authors", sa.Column("nickname", sa.Text()))',
        downgrade='op.drop_column("authors", "nickname")',
    )
    await asyncio.to_thread(command.upgrade, scripts.config(target_for(fresh_url)), project_head())
    return scripts


@asynccontextmanager
async def reader_holding_authors(url: str) -> AsyncIterator[int]:
    """A session that read authors in a transaction it keeps open; yields its pid."""
    settings = make_settings(url)
    engine = create_engine(settings.database, EngineOptions(pool_size=1, max_overflow=0))
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"SET application_name = '{READER}'"))
            pid = int(await connection.scalar(text("SELECT pg_backend_pid()")) or 0)
            await connection.execute(text("SELECT count(*) FROM authors"))
            yield pid
            await connection.rollback()
    finally:
        await engine.dispose()


async def migrate(url: str, scripts: ScratchScripts, cwd: Path, window: float) -> Finished:
    return await run_cli_async(
        cwd,
        "migrate",
        DATABASE_URL=url,
        ALEMBIC_CONFIG=str(scripts.ini),
        MIGRATION_LOCK_WINDOW=str(window),
    )


@dataclass
class Traffic:
    """API reads of authors, one after another, and what Postgres said sessions waited for."""

    waits: list[float] = field(default_factory=list)
    api_sessions_queued: int = 0
    migration_attempts_queued: int = 0
    migration_queued_now: bool = False


async def read_authors_until(done: asyncio.Event, url: str, traffic: Traffic) -> None:
    async with serving(make_settings(url)) as client:
        for _ in range(20_000):
            if done.is_set():
                return
            started = time.monotonic()
            data = await client.execute(AUTHORS_QUERY)
            traffic.waits.append(time.monotonic() - started)
            assert data["authors"]["totalCount"] == 3


QUEUED_FOR_AUTHORS = (
    "SELECT count(*) FILTER (WHERE a.application_name = :migrator),"
    " count(*) FILTER (WHERE a.application_name NOT IN (:migrator, :reader))"
    " FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid"
    " WHERE a.datname = current_database() AND NOT l.granted"
    " AND l.relation = 'authors'::regclass"
)


async def watch_lock_queue(done: asyncio.Event, url: str, traffic: Traffic) -> None:
    """Sample the server: each time the migration queues for authors, and the API behind it."""
    for _ in range(20_000):
        if done.is_set():
            return
        [(migrator, api)] = await rows(
            url, QUEUED_FOR_AUTHORS, migrator=APPLICATION_NAME, reader=READER
        )
        if migrator and not traffic.migration_queued_now:
            traffic.migration_attempts_queued += 1
        traffic.migration_queued_now = bool(migrator)
        traffic.api_sessions_queued += int(api)
        await asyncio.sleep(0.05)


async def test_a_long_reader_never_freezes_reads_and_migrate_goes_through_after_it(
    fresh_url: str, scripts: ScratchScripts, tmp_path: Path
) -> None:
    settings = make_settings(fresh_url)
    engine = create_engine(settings.database, EngineOptions(pool_size=1))
    try:
        await insert_authors(engine, 3)
    finally:
        await engine.dispose()
    traffic = Traffic()
    done = asyncio.Event()

    async with reader_holding_authors(fresh_url) as reader_pid:
        # The window runs out while the reader still holds its lock: one line, no traceback.
        gave_up = await migrate(fresh_url, scripts, tmp_path, window=1.5)
        line = single_error_line(gave_up)
        assert "MIGRATION_LOCK_WINDOW" in line, line
        assert "lock on authors" in line, line
        assert f"pid {reader_pid} (application_name '{READER}', idle in transaction" in line
        assert "SELECT count(*) FROM authors" in line
        assert await versions(fresh_url) == [project_head()]

        # Now a window long enough to outlast the reader, with API traffic throughout. The
        # reader holds on until the migration has queued for its lock a few times.
        tasks = [
            asyncio.create_task(read_authors_until(done, fresh_url, traffic)),
            asyncio.create_task(watch_lock_queue(done, fresh_url, traffic)),
        ]
        migrating = asyncio.create_task(migrate(fresh_url, scripts, tmp_path, window=30))
        deadline = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < deadline and not migrating.done():
            if traffic.migration_attempts_queued >= QUEUED_ATTEMPTS:
                break
            await asyncio.sleep(0.05)
        assert not migrating.done(), migrating.result()
    succeeded = await migrating
    done.set()
    await asyncio.gather(*tasks)

    assert succeeded.returncode == 0, succeeded
    assert succeeded.stdout == f"migrated {project_head()} -> scratch_nickname (1 revision)\n"
    assert await versions(fresh_url) == ["scratch_nickname"]
    # The migration queued for its lock again and again, reads queued behind it each time,
    # and each time it let go before a read waited long.
    assert traffic.migration_attempts_queued >= QUEUED_ATTEMPTS, traffic.migration_attempts_queued
    assert traffic.api_sessions_queued > 0, traffic.api_sessions_queued
    assert len(traffic.waits) > 20, traffic.waits
    assert max(traffic.waits) < MAX_READ_WAIT, sorted(traffic.waits)[-5:]


async def test_migrate_refuses_a_pooled_url_it_cannot_make_direct(
    fresh_url: str, tmp_path: Path
) -> None:
    refused = await run_cli_async(
        tmp_path, "migrate", DATABASE_URL=fresh_url, DATABASE_POOLED="true"
    )
    line = single_error_line(refused)
    assert "DATABASE_DIRECT_URL" in line, line
    assert await rows(fresh_url, "SELECT to_regclass('alembic_version')") == [(None,)]

    migrated = await run_cli_async(
        tmp_path,
        "migrate",
        DATABASE_URL=fresh_url,
        DATABASE_POOLED="true",
        DATABASE_DIRECT_URL=fresh_url,
    )
    assert migrated.returncode == 0, migrated
    count = len(code_lineage())
    assert migrated.stdout == f"migrated base -> {project_head()} ({count} revisions)\n"
