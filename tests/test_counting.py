"""`install_counting` counts a table that already has rows, runs twice safely, and undoes."""

import asyncio
from pathlib import Path

from sqlalchemy import text

from alembic import command
from tests.scratch_revisions import ScratchScripts, project_head
from tests.test_migrations import columns, connect, fresh_url, target_for

__all__ = ["fresh_url"]

EXISTING_ROWS = 3


def scripts_counting_notes(root: Path) -> ScratchScripts:
    scripts = ScratchScripts(root)
    scripts.add(
        "count_notes",
        upgrade=f"""
            op.execute("CREATE TABLE notes (id serial PRIMARY KEY)")
            op.execute("INSERT INTO notes SELECT FROM generate_series(1, {EXISTING_ROWS})")
            counting.install_counting("notes")
        """,
        downgrade="""
            counting.remove_counting("notes")
            op.execute("DROP TABLE notes")
        """,
    )
    scripts.add("count_notes_again", upgrade='counting.install_counting("notes")')
    return scripts


async def counted(url: str) -> int:
    async with connect(url) as connection:
        return int(await connection.scalar(text("SELECT sum(notes) FROM row_counts")) or 0)


async def run(url: str, statement: str) -> None:
    async with connect(url) as connection:
        await connection.execute(text(statement))
        await connection.commit()


async def test_counting_a_table_with_rows(fresh_url: str, tmp_path: Path) -> None:
    scripts = scripts_counting_notes(tmp_path)
    config = scripts.config(target_for(fresh_url))

    await asyncio.to_thread(command.upgrade, config, "count_notes")
    assert await counted(fresh_url) == EXISTING_ROWS
    await run(fresh_url, "INSERT INTO notes SELECT FROM generate_series(1, 2)")
    await run(fresh_url, "DELETE FROM notes WHERE id = 1")
    assert await counted(fresh_url) == EXISTING_ROWS + 2 - 1

    await asyncio.to_thread(command.upgrade, config, "count_notes_again")  # a re-run converges
    assert await counted(fresh_url) == EXISTING_ROWS + 2 - 1
    await run(fresh_url, "TRUNCATE notes")
    assert await counted(fresh_url) == 0

    await asyncio.to_thread(command.downgrade, config, project_head())
    assert "notes" not in await columns(fresh_url, "row_counts")
