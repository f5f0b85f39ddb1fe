"""Concurrent index builds from a revision: rendered offline, kept when valid, rebuilt when not."""

import asyncio
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alembic import command
from api.db.migration_lock import MigrationBlocked, MigrationPolicy
from tests.scratch_revisions import ScratchScripts, project_head
from tests.test_migrations import connect, fresh_url, rows, target_for, versions

__all__ = ["fresh_url"]

TITLE_INDEX = "ix_books_lower_title"
NAME_INDEX = "uq_authors_name_with_bio"
OPEN_WRITE = (
    "WITH author AS (INSERT INTO authors (name) VALUES ('Open Transaction') RETURNING id)"
    " INSERT INTO books (title, author_id) SELECT 'Unfinished', id FROM author"
)


@pytest.fixture
def scripts(tmp_path: Path) -> ScratchScripts:
    scripts = ScratchScripts(tmp_path)
    scripts.add(
        "scratch_indexes",
        upgrade=f"""
            online_ddl.create_index_concurrently("{TITLE_INDEX}", "books", ["lower(title)"])
            online_ddl.create_index_concurrently(
                "{NAME_INDEX}", "authors", ["name DESC"],
                using="btree", where="bio IS NOT NULL", unique=True,
            )
        """,
        downgrade=f"""
            online_ddl.drop_index_concurrently("{NAME_INDEX}")
            online_ddl.drop_index_concurrently("{TITLE_INDEX}")
        """,
    )
    return scripts


@pytest.fixture
async def at_project_head(fresh_url: str, scripts: ScratchScripts) -> str:
    """`fresh_url` migrated to the project's head, one below the scratch revision."""
    config = scripts.config(target_for(fresh_url))
    await asyncio.to_thread(command.upgrade, config, project_head())
    return fresh_url


async def upgrade(url: str, scripts: ScratchScripts, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, scripts.config(target_for(url)), revision)


@dataclass(frozen=True)
class Index:
    oid: int
    valid: bool
    definition: str


async def index(url: str, name: str) -> Index | None:
    found = await rows(
        url,
        "SELECT c.oid, i.indisvalid, pg_get_indexdef(c.oid) FROM pg_class c"
        " JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = :name",
        name=name,
    )
    return Index(*found[0]) if found else None


async def valid_index(url: str, name: str) -> Index:
    found = await index(url, name)
    assert found is not None, f"no index {name}"
    assert found.valid, found
    return found


async def leave_invalid_index(url: str, name: str, build: str) -> None:
    """Run `build` concurrently while a writer's transaction is open, until lock_timeout.

    The build registers the index first, then waits for every transaction that may write
    the table; the timeout cancels that wait and leaves the index INVALID.
    """
    async with connect(url) as writer, connect(url) as connection:
        await writer.execute(text(OPEN_WRITE))
        builder = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await builder.execute(text("SET lock_timeout = '200ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            await builder.execute(text(build))
        await writer.rollback()


def test_offline_sql_has_the_concurrent_builds(scripts: ScratchScripts) -> None:
    config = scripts.config()
    config.output_buffer = io.StringIO()
    command.upgrade(config, f"{project_head()}:{scripts.head}", sql=True)
    sql = config.output_buffer.getvalue()

    assert f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TITLE_INDEX} ON books (lower(title));" in sql
    assert (
        f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {NAME_INDEX} ON authors"
        " USING btree (name DESC) WHERE bio IS NOT NULL;" in sql
    )
    before_build = sql[: sql.index("CREATE INDEX CONCURRENTLY")]
    assert "SET lock_timeout = '1s';" in before_build
    assert "COMMIT;" in before_build  # the build runs outside the revision's transaction


async def test_upgrade_builds_valid_indexes_and_downgrade_drops_them(
    at_project_head: str, scripts: ScratchScripts
) -> None:
    await upgrade(at_project_head, scripts)

    title = await valid_index(at_project_head, TITLE_INDEX)
    name = await valid_index(at_project_head, NAME_INDEX)
    assert title.definition.endswith("USING btree (lower((title)::text))"), title
    assert name.definition.startswith("CREATE UNIQUE INDEX"), name
    assert name.definition.endswith("(name DESC) WHERE (bio IS NOT NULL)"), name

    await asyncio.to_thread(
        command.downgrade, scripts.config(target_for(at_project_head)), project_head()
    )
    assert await index(at_project_head, TITLE_INDEX) is None
    assert await index(at_project_head, NAME_INDEX) is None


async def test_an_invalid_leftover_is_rebuilt_and_a_valid_index_kept(
    at_project_head: str, scripts: ScratchScripts
) -> None:
    await leave_invalid_index(
        at_project_head,
        TITLE_INDEX,
        f"CREATE INDEX CONCURRENTLY {TITLE_INDEX} ON books (lower(title))",
    )
    leftover = await index(at_project_head, TITLE_INDEX)
    assert leftover is not None
    assert not leftover.valid
    async with connect(at_project_head) as connection:
        await connection.execute(
            text(f"CREATE UNIQUE INDEX {NAME_INDEX} ON authors (name DESC) WHERE bio IS NOT NULL")
        )
        await connection.commit()
    kept = await valid_index(at_project_head, NAME_INDEX)

    await upgrade(at_project_head, scripts)

    rebuilt = await valid_index(at_project_head, TITLE_INDEX)
    assert rebuilt.oid != leftover.oid  # dropped and built again, not just marked valid
    assert await index(at_project_head, NAME_INDEX) == kept
    invalid = await rows(at_project_head, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")
    assert invalid == [(0,)]


async def test_migrate_interrupted_mid_build_converges_on_the_next_run(
    at_project_head: str, scripts: ScratchScripts
) -> None:
    """The build meets an open writer, times out its lock waits until the window closes.

    It leaves an INVALID index and migrate fails in one message naming the writer; once the
    writer is gone, the next run drops the leftover, builds it again and stamps the revision.
    """
    config = scripts.config(target_for(at_project_head), MigrationPolicy(lock_window=1.5))
    async with connect(at_project_head) as writer:
        await writer.execute(text("SET application_name = 'open-writer'"))
        await writer.execute(text(OPEN_WRITE))
        with pytest.raises(MigrationBlocked) as blocked:
            await asyncio.to_thread(command.upgrade, config, "head")
        await writer.rollback()

    message = str(blocked.value)
    assert "MIGRATION_LOCK_WINDOW" in message
    assert "waiting for another transaction to end, blocked by pid" in message, message
    assert "application_name 'open-writer', idle in transaction" in message, message
    assert "\n" not in message
    leftover = await index(at_project_head, TITLE_INDEX)
    assert leftover is not None
    assert not leftover.valid
    assert await versions(at_project_head) == [project_head()]

    await asyncio.to_thread(command.upgrade, scripts.config(target_for(at_project_head)), "head")

    assert await versions(at_project_head) == [scripts.head]
    rebuilt = await valid_index(at_project_head, TITLE_INDEX)
    assert rebuilt.oid != leftover.oid
    await valid_index(at_project_head, NAME_INDEX)
    invalid = await rows(at_project_head, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")
    assert invalid == [(0,)]
