"""Each applied head revision's ancestry, recorded in the database by whoever migrated it.

A replica of the previous release knows only its own revisions. After an expand migration
the database is at a revision that replica has never seen; this table lets it tell "ahead of
my head and descending from it" (keep serving) from "behind" or "on another branch".
The table is Alembic's bookkeeping, like alembic_version: revision 0003 creates it, and
autogenerate leaves it alone (see env.py).
"""

from collections.abc import Iterable, Mapping

from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    MetaData,
    Select,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

LINEAGE_TABLE = "alembic_lineage"
REVISION_LENGTH = 32

lineage = Table(
    LINEAGE_TABLE,
    MetaData(),
    Column("revision", String(REVISION_LENGTH), primary_key=True),
    Column("ancestors", ARRAY(String(REVISION_LENGTH)), nullable=False),
    Column("recorded_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def ancestors(script: ScriptDirectory, revision: str) -> frozenset[str]:
    """Every revision `revision` descends from, through all branches of merges."""
    return frozenset(
        step.revision
        for step in script.walk_revisions("base", revision)
        if step.revision != revision
    )


def record_lineage(connection: Connection, script: ScriptDirectory, heads: Iterable[str]) -> None:
    """Upsert the ancestry of `heads`; a no-op below the revision that creates the table."""
    if connection.scalar(select(func.to_regclass(LINEAGE_TABLE))) is None:
        return
    for head in heads:
        row = {"revision": head, "ancestors": sorted(ancestors(script, head))}
        upsert = insert(lineage).values(row)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[lineage.c.revision],
                set_={"ancestors": upsert.excluded.ancestors, "recorded_at": func.now()},
            )
        )


def descends_from(
    current: Iterable[str], heads: Iterable[str], ancestry: Mapping[str, frozenset[str]]
) -> bool:
    """Is every one of `heads` applied: current itself, or an ancestor of a current revision?"""
    current = set(current)
    return all(
        head in current or any(head in ancestry.get(rev, ()) for rev in current) for head in heads
    )


def _ancestry_of(revisions: Iterable[str]) -> Select[str, list[str]]:
    return select(lineage.c.revision, lineage.c.ancestors).where(
        lineage.c.revision.in_(list(revisions))
    )


def read_lineage(connection: Connection, revisions: Iterable[str]) -> dict[str, frozenset[str]]:
    """The ancestry recorded for each of `revisions` that has one (for env.py)."""
    if connection.scalar(select(func.to_regclass(LINEAGE_TABLE))) is None:
        return {}
    return {rev: frozenset(parents) for rev, parents in connection.execute(_ancestry_of(revisions))}


async def recorded_ancestors(
    connection: AsyncConnection, revisions: Iterable[str]
) -> dict[str, frozenset[str]]:
    """The ancestry recorded for each of `revisions` that has one."""
    if await connection.scalar(select(func.to_regclass(LINEAGE_TABLE))) is None:
        return {}
    found = await connection.execute(_ancestry_of(revisions))
    return {revision: frozenset(parents) for revision, parents in found}
