"""/readyz during rolling deploys: old code stays ready after an expand, not when it is unsafe."""

import asyncio
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from alembic import command
from api.db.compatibility import COLUMNS_CACHE_SECONDS, Compatibility
from api.db.engine import EngineOptions, create_engine
from api.db.migration_lock import MigrationBlocked
from api.db.migrations import alembic_config, upgrade_to_head
from api.db.statements import statement_counter
from tests.conftest import make_settings
from tests.scratch_revisions import ScratchScripts, project_head
from tests.test_http import serve
from tests.test_migrations import connect, fresh_url, target_for, upgrade, versions

__all__ = ["fresh_url"]


async def readiness(url: str) -> httpx.Response:
    async with serve(url) as http:
        return await http.get("/readyz")


async def execute(url: str, *statements: str) -> None:
    async with connect(url) as connection:
        for statement in statements:
            await connection.execute(text(statement))
        await connection.commit()


@pytest.fixture
async def one_expand_ahead(fresh_url: str, tmp_path: Path) -> str:
    """A database migrated by the next release: one expand-only revision past this code."""
    scripts = ScratchScripts(tmp_path)
    scripts.add(
        "scratch_expand",
        upgrade='op.add_column("authors", sa.Column("nickname", sa.Text()))',
        downgrade='op.drop_column("authors", "nickname")',
    )
    await asyncio.to_thread(command.upgrade, scripts.config(target_for(fresh_url)), "head")
    return fresh_url


async def test_old_code_stays_ready_one_expand_revision_ahead(one_expand_ahead: str) -> None:
    response = await readiness(one_expand_ahead)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_an_unknown_revision_without_recorded_lineage_is_not_ready(
    one_expand_ahead: str,
) -> None:
    await execute(one_expand_ahead, "DELETE FROM alembic_lineage WHERE revision = 'scratch_expand'")

    response = await readiness(one_expand_ahead)

    assert response.status_code == 503, response.text
    reason = response.json()["reason"]
    assert reason.startswith("database schema at revision scratch_expand, which this code")
    assert project_head() in reason


async def test_migrate_with_old_code_leaves_a_database_ahead_alone(one_expand_ahead: str) -> None:
    """A previous-release replica that migrates on start must neither fail nor downgrade."""
    journal = await asyncio.to_thread(upgrade_to_head, target_for(one_expand_ahead), quiet=True)

    assert journal.summary() == (
        f"database at scratch_expand, ahead of this code's head {project_head()}: nothing to do"
    )
    assert await versions(one_expand_ahead) == ["scratch_expand"]

    await execute(one_expand_ahead, "DELETE FROM alembic_lineage WHERE revision = 'scratch_expand'")
    with pytest.raises(MigrationBlocked, match="does not know and cannot tell descends from"):
        await asyncio.to_thread(upgrade_to_head, target_for(one_expand_ahead), quiet=True)


async def test_one_revision_behind_is_not_ready(fresh_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(project_head()).down_revision
    assert isinstance(previous, str)
    await upgrade(fresh_url, previous)

    response = await readiness(fresh_url)

    assert response.status_code == 503, response.text
    assert response.json()["reason"] == (
        f"database schema at revision {previous}, expected {project_head()}: run migrations"
    )


async def test_a_renamed_column_the_code_maps_is_not_ready(fresh_url: str) -> None:
    await upgrade(fresh_url)
    assert (await readiness(fresh_url)).status_code == 200

    await execute(fresh_url, "ALTER TABLE authors RENAME COLUMN country TO country_code")
    response = await readiness(fresh_url)

    assert response.status_code == 503, response.text
    assert response.json()["reason"] == (
        "database lacks column authors.country, which this code maps: run migrations"
    )


async def test_a_missing_table_is_not_ready(fresh_url: str) -> None:
    await upgrade(fresh_url)
    await execute(fresh_url, "ALTER TABLE books RENAME TO volumes")

    response = await readiness(fresh_url)

    assert response.status_code == 503, response.text
    assert response.json()["reason"].startswith("database lacks table books")


async def test_the_columns_check_is_cached_briefly(fresh_url: str) -> None:
    await upgrade(fresh_url)
    now = [0.0]
    compatibility = Compatibility(clock=lambda: now[0])
    engine = create_engine(make_settings(fresh_url).database, EngineOptions(pool_size=1))

    async def statements_for_one_check() -> tuple[int, str | None]:
        with statement_counter() as counter:
            async with engine.connect() as connection:
                problem = await compatibility.problem(connection)
        return counter.count, problem

    try:
        first, problem = await statements_for_one_check()
        assert problem is None
        now[0] += COLUMNS_CACHE_SECONDS / 2
        await execute(fresh_url, "ALTER TABLE authors RENAME COLUMN bio TO biography")
        cached, problem = await statements_for_one_check()
        assert problem is None  # not seen yet: the columns were read a moment ago
        now[0] += COLUMNS_CACHE_SECONDS
        fresh, problem = await statements_for_one_check()
    finally:
        await engine.dispose()

    assert cached == first - 1
    assert fresh == first
    assert problem == "database lacks column authors.bio, which this code maps: run migrations"
