"""Can this code serve this database? The rule that lets rolling deploys keep old replicas.

Ready when the database is at the code's head, or at a later revision that descends from
it (an expand migration the code predates); not ready when it is behind, on another
branch, or lacks a table or column the code maps (a contract step went out too early).
"""

import time
from collections.abc import Callable, Mapping

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.lineage import descends_from, recorded_ancestors
from api.db.migrations import code_lineage, current_revisions, describe, head_revisions
from api.db.models import Base

# The columns check reads the catalogue; a load balancer asking every few seconds needs no
# fresher answer than this.
COLUMNS_CACHE_SECONDS = 5.0

COLUMNS_SQL = text(
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema()"
)


def revision_problem(
    current: frozenset[str],
    heads: frozenset[str],
    ancestry: Mapping[str, frozenset[str]],
) -> str | None:
    """Why `current` cannot serve code at `heads`, given each current revision's ancestors."""
    if current and descends_from(current, heads, ancestry):
        return None
    have, want = describe(current) if current else "none", describe(heads)
    unknown = sorted(current - ancestry.keys())
    if unknown:
        return (
            f"database schema at revision {have}, which this code does not know and cannot"
            f" tell descends from {want}: deploy the code that migrated it"
        )
    if any(rev in ancestry.get(head, ()) for head in heads for rev in current) or not current:
        return f"database schema at revision {have}, expected {want}: run migrations"
    return f"database schema at revision {have}, on another branch than {want}"


def missing_columns(metadata: MetaData, present: set[tuple[str, str]]) -> list[str]:
    """`table` or `table.column` for each one the models map and the database lacks."""
    tables = {table for table, _ in present}
    missing = []
    for table in metadata.sorted_tables:
        if table.name not in tables:
            missing.append(f"table {table.name}")
            continue
        missing += [
            f"column {table.name}.{column.name}"
            for column in table.columns
            if (table.name, column.name) not in present
        ]
    return missing


class Compatibility:
    """The readiness verdict for one app; the columns check is cached for a few seconds."""

    def __init__(
        self,
        metadata: MetaData = Base.metadata,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata = metadata
        self.clock = clock
        self._columns_checked_at: float | None = None
        self._missing: list[str] = []

    async def problem(self, connection: AsyncConnection) -> str | None:
        current = await current_revisions(connection)
        known = code_lineage()
        ancestry = dict(known)
        unknown = current - known.keys()
        if unknown:
            ancestry |= await recorded_ancestors(connection, unknown)
        problem = revision_problem(current, head_revisions(), ancestry)
        if problem is not None:
            return problem
        missing = await self._missing_columns(connection)
        if missing:
            return f"database lacks {', '.join(missing)}, which this code maps: run migrations"
        return None

    async def _missing_columns(self, connection: AsyncConnection) -> list[str]:
        now = self.clock()
        if self._columns_checked_at is None or now - self._columns_checked_at > (
            COLUMNS_CACHE_SECONDS
        ):
            present = {(table, column) for table, column in await connection.execute(COLUMNS_SQL)}
            self._missing = missing_columns(self.metadata, present)
            self._columns_checked_at = now
        return self._missing
