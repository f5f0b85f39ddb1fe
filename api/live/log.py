"""Reading the change log: the changes one snapshot has that another has not.

A window is `(seen → upto)`: the changes whose transactions are visible in `upto` and were
not in `seen`, in log-id order. `upto` None means "now": the statement's own snapshot, which
it returns. Only committed changes are ever visible, and a transaction that took its log ids
first but commits last lands in a later window rather than being skipped.
"""

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from api.live.cursors import Position
from api.live.snapshots import Snapshot

# The transactions not yet seen are found through the xid index (a MATERIALIZED step):
# ordered by id with a LIMIT, Postgres would rather walk the primary key from the oldest
# change and filter, reading the whole log each time (27 ms at 250,000 changes).
WINDOW = """
WITH now AS (SELECT pg_current_snapshot() AS snapshot),
unseen AS MATERIALIZED (
    SELECT * FROM change_log c
    WHERE c.xid >= pg_snapshot_xmin($1::text::pg_snapshot)
      AND NOT pg_visible_in_snapshot(c.xid, $1::text::pg_snapshot)
      AND ($2::text IS NULL OR pg_visible_in_snapshot(c.xid, $2::text::pg_snapshot))
      AND c.id > $3
      AND c.entity = ANY($5::text[])
)
SELECT now.snapshot::text AS snapshot, c.id, c.xid::text AS xid, c.entity, c.row_id, c.kind,
       c.old_values::text AS old_values, c.new_values::text AS new_values
FROM now LEFT JOIN LATERAL (SELECT * FROM unseen ORDER BY id LIMIT $4) c ON true
"""
CURRENT = "SELECT pg_current_snapshot()::text"
PURGED_MARK = "SELECT snapshot FROM change_log_marks WHERE purged ORDER BY taken_at DESC LIMIT 1"
TAKE_MARK = """
INSERT INTO change_log_marks (taken_at, snapshot) VALUES (now(), pg_current_snapshot()::text)
ON CONFLICT (taken_at) DO NOTHING
"""
# The newest mark older than retention, marked purged before anything it covers is deleted:
# from then on, a cursor that does not cover it is told so rather than silently missing.
CHOOSE_MARK = """
WITH chosen AS (
    SELECT taken_at FROM change_log_marks
    WHERE taken_at <= now() - make_interval(secs => $1)
    ORDER BY taken_at DESC LIMIT 1
)
UPDATE change_log_marks m SET purged = true FROM chosen
WHERE m.taken_at = chosen.taken_at
RETURNING m.taken_at, m.snapshot
"""
DROP_OLDER_MARKS = "DELETE FROM change_log_marks WHERE taken_at < $1"
PURGE = """
DELETE FROM change_log WHERE id IN (
    SELECT id FROM change_log
    WHERE xid < pg_snapshot_xmax($1::text::pg_snapshot)
      AND pg_visible_in_snapshot(xid, $1::text::pg_snapshot)
    LIMIT $2
)
"""


@dataclass(frozen=True)
class Change:
    """One row of the log: a row of `entity` created, updated or deleted."""

    id: int
    xid: int
    entity: str
    row_id: int
    kind: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True)
class Window:
    """A page of changes from `start` (exclusive) to `end`; `complete` when nothing more
    of that window is left, and the next one starts at `end`."""

    start: Snapshot
    end: Snapshot
    changes: list[Change]
    complete: bool


async def current(connection: asyncpg.Connection) -> Snapshot:
    return Snapshot.parse(await connection.fetchval(CURRENT))


async def read_window(
    connection: asyncpg.Connection, position: Position, limit: int, entities: list[str]
) -> Window:
    """The changes to `entities` after `position`, up to its `upto` (or now), at most
    `limit` of them."""
    upto = str(position.upto) if position.upto else None
    rows = await connection.fetch(WINDOW, str(position.seen), upto, position.after, limit, entities)
    end = position.upto or Snapshot.parse(rows[0]["snapshot"])
    changes = [
        Change(
            row["id"],
            int(row["xid"]),
            row["entity"],
            row["row_id"],
            row["kind"],
            orjson.loads(row["old_values"]) if row["old_values"] else None,
            orjson.loads(row["new_values"]) if row["new_values"] else None,
        )
        for row in rows
        if row["id"] is not None
    ]
    return Window(position.seen, end, changes, complete=len(changes) < limit)


async def expired(connection: asyncpg.Connection, position: Position) -> bool:
    """Whether changes this position had not received may have been purged: its snapshot
    does not cover the last purged mark (it was taken before that mark)."""
    purged = await connection.fetchval(PURGED_MARK)
    return purged is not None and not position.seen.covers(Snapshot.parse(purged))


async def purge(connection: asyncpg.Connection, retention_seconds: float, batch: int) -> int:
    """Take a mark, then delete the changes covered by the newest mark older than
    retention, `batch` rows per statement; how many went."""
    await connection.execute(TAKE_MARK)
    chosen = await connection.fetchrow(CHOOSE_MARK, retention_seconds)
    if chosen is None:
        return 0
    gone = 0
    while True:
        status = await connection.execute(PURGE, chosen["snapshot"], batch)
        deleted = int(status.split()[-1])
        gone += deleted
        if deleted < batch:
            break
    await connection.execute(DROP_OLDER_MARKS, chosen["taken_at"])
    return gone
