"""`python -m api migrate` run by many replicas at once, over concurrent index builds."""

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from alembic import command
from api.db.migration_lock import APPLICATION_NAME, MIGRATION_LOCK_KEY
from tests.forked_cli import ForkedCli
from tests.scratch_revisions import ScratchScripts
from tests.test_cli import Finished, environment
from tests.test_migrations import connect, fresh_url, rows, target_for

# `make test-fast` leaves these out: four migrators racing (about 20 s).
pytestmark = pytest.mark.slow

__all__ = ["fresh_url"]

MIGRATORS = 4
ROUNDS = 20


@pytest.fixture
def scripts(tmp_path: Path) -> ScratchScripts:
    """Two revisions past the project's head, each building indexes concurrently.

    Each revision writes its name into `scratch_runs` in the same transaction that stamps
    it as applied (after its builds), so the table counts how often each one really ran.
    """
    scripts = ScratchScripts(tmp_path)
    scripts.add(
        "scratch_title_index",
        upgrade="""
            online_ddl.create_index_concurrently("ix_books_lower_title", "books", ["lower(title)"])
            op.create_table("scratch_runs", sa.Column("revision", sa.Text(), nullable=False))
            op.execute("INSERT INTO scratch_runs VALUES ('scratch_title_index')")
        """,
        downgrade="""
            op.drop_table("scratch_runs")
            online_ddl.drop_index_concurrently("ix_books_lower_title")
        """,
    )
    scripts.add(
        "scratch_name_indexes",
        upgrade="""
            online_ddl.create_index_concurrently(
                "ix_authors_lower_name", "authors", ["lower(name)"]
            )
            online_ddl.create_index_concurrently(
                "ix_books_created_at", "books", ["created_at DESC"]
            )
            op.execute("INSERT INTO scratch_runs VALUES ('scratch_name_indexes')")
        """,
        downgrade="""
            online_ddl.drop_index_concurrently("ix_books_created_at")
            online_ddl.drop_index_concurrently("ix_authors_lower_name")
        """,
    )
    return scripts


async def sessions_named(url: str, application_name: str) -> int:
    found = await rows(
        url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = :name",
        name=application_name,
    )
    return int(found[0][0])


@asynccontextmanager
async def migration_lock_held(url: str) -> AsyncIterator[None]:
    """Hold the migrators' lock (outside a transaction) until the block ends."""
    async with connect(url) as connection:
        gate = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await gate.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            await gate.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})


async def race(url: str, scripts: ScratchScripts, cli: ForkedCli) -> list[Finished]:
    """MIGRATORS runs of `python -m api migrate` (forked: see tests/forked_cli.py) at once.

    Processes start some time apart, longer than these migrations take; the lock is held
    until every one of them is connected and waiting, so that they really race.
    """
    env = environment(DATABASE_URL=url, ALEMBIC_CONFIG=str(scripts.ini))
    async with migration_lock_held(url):
        started = [cli.start(["migrate"], env) for _ in range(MIGRATORS)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline and all(p.exitcode is None for p, _, _ in started):
            if await sessions_named(url, APPLICATION_NAME) >= MIGRATORS:
                break
            await asyncio.sleep(0.02)
        waiting = await sessions_named(url, APPLICATION_NAME)
    finished = [await cli.finish(*child, within=120) for child in started]
    assert waiting == MIGRATORS, ("not every migrator was waiting for its turn", finished)
    return finished


async def test_four_migrators_at_once_apply_each_revision_once(
    fresh_url: str, scripts: ScratchScripts, tmp_path: Path
) -> None:
    revisions = len(list(ScriptDirectory.from_config(scripts.config()).walk_revisions()))
    applied = f"migrated base -> {scripts.head} ({revisions} revisions)"
    nothing_left = f"already at head {scripts.head}"
    config = scripts.config(target_for(fresh_url))
    cli = ForkedCli(tmp_path)

    for round_number in range(ROUNDS):
        finished = await race(fresh_url, scripts, cli)

        assert [run.returncode for run in finished] == [0] * MIGRATORS, (round_number, finished)
        summaries = Counter(run.stdout.strip() for run in finished)
        assert summaries == {applied: 1, nothing_left: MIGRATORS - 1}, (round_number, finished)
        assert [run.stderr for run in finished] == [""] * MIGRATORS
        runs = await rows(
            fresh_url, "SELECT revision, count(*) FROM scratch_runs GROUP BY 1 ORDER BY 1"
        )
        assert runs == [(name, 1) for name in sorted(scripts.added)], round_number
        indexes = await rows(
            fresh_url,
            "SELECT count(*) FILTER (WHERE indisvalid), count(*) FILTER (WHERE NOT indisvalid)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname IN ('ix_books_lower_title', 'ix_authors_lower_name',"
            " 'ix_books_created_at')",
        )
        assert indexes == [(3, 0)], round_number

        await asyncio.to_thread(command.downgrade, config, "base")
    assert os.environ.get("ALEMBIC_CONFIG") is None  # the scratch chain stayed in the children
