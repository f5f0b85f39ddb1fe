"""Exact row counts for a table, installed by a revision in a lock order that cannot deadlock.

`row_counts` holds one column per counted table, kept by statement-level triggers (see
`api.catalog.counts` and revision 0005). A counting trigger runs inside the writer's
statement: the writer holds its table, then updates `row_counts`. A revision must never take
those locks the other way round in one transaction: `ALTER TABLE row_counts` (an ACCESS
EXCLUSIVE lock, held to commit) followed by a trigger on a live counted table waits for that
table's writers while they wait for `row_counts`: a deadlock (2 of 2 runs under live inserts).

`install_counting` therefore commits each step on its own: the column first, then the
function and triggers (a short lock on the table alone), then the backfill, which waits for
nothing. Every step can run again: a retry after a lock timeout starts the revision over.
`api.db.migration_lint` flags a revision that takes the two locks in the wrong order.
"""

from alembic import op
from api.db.online_ddl import SET_LOCK_TIMEOUT
from api.db.triggers import drop_triggers, install_triggers, statement_triggers

COUNTS_TABLE = "row_counts"
# Writers add to slot pg_backend_pid() % SLOTS; BASE_SLOT holds what existed before counting.
SLOTS = 16
BASE_SLOT = -1
TRIGGERS = {"count_inserted": "INSERT", "count_deleted": "DELETE", "count_truncated": "TRUNCATE"}


def counting_function(table: str) -> str:
    """A statement-level trigger function: one UPDATE per statement, whatever its row count.

    The increment goes to the slot of the writer's backend, so concurrent writers rarely queue
    on one row; a statement that changed no row takes no lock at all.
    """
    return f"""
CREATE OR REPLACE FUNCTION count_{table}_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE row_counts SET {table} = 0 WHERE {table} <> 0;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO delta FROM new_rows;
    ELSE
        SELECT -count(*) INTO delta FROM old_rows;
    END IF;
    IF delta <> 0 THEN
        UPDATE row_counts SET {table} = {table} + delta WHERE slot = pg_backend_pid() % {SLOTS};
    END IF;
    RETURN NULL;
END
$$"""  # noqa: S608 - `table` is a revision's own constant


def counting_triggers(table: str) -> list[str]:
    return statement_triggers(table, f"count_{table}_rows", TRIGGERS)


def base_count(table: str) -> str:
    """The base slot: the rows that existed before the triggers, minus what they counted.

    One statement, so one snapshot: a write committed before it is both in count(*) and in
    the slots, and cancels out; a later one is in neither, and the triggers count it.
    """
    return (
        f"UPDATE {COUNTS_TABLE} SET {table} = "  # noqa: S608 - a revision's own constant
        f"(SELECT count(*) FROM {table}) - "
        f"(SELECT coalesce(sum({table}), 0) FROM {COUNTS_TABLE} WHERE slot <> {BASE_SLOT}) "
        f"WHERE slot = {BASE_SLOT}"
    )


def install_counting(table: str) -> None:
    """Count `table`'s rows in `row_counts`: column, triggers and backfill, each committed."""
    context = op.get_context()
    with context.autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(
            f"ALTER TABLE {COUNTS_TABLE} ADD COLUMN IF NOT EXISTS {table} bigint NOT NULL DEFAULT 0"
        )
    install_triggers(counting_function(table), counting_triggers(table))
    with context.autocommit_block():
        op.execute(base_count(table))


def remove_counting(table: str) -> None:
    """Undo `install_counting`, triggers first: then no writer touches the column it drops."""
    drop_triggers(table, f"count_{table}_rows", TRIGGERS)
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(f"ALTER TABLE {COUNTS_TABLE} DROP COLUMN IF EXISTS {table}")
