"""The change log's triggers, installed by a revision: one function and three statement-level
triggers per logged table.

Each trigger writes one `INSERT … SELECT` per statement from its transition table, whatever
the row count, so `seedCatalog`'s bulk statements pay once per statement, not per row. It
stores the columns a subscription's filter reads, before and after, and ends with a NOTIFY:
the wake-up for every process's live service (api/live). NOTIFY is delivered at commit and
folded into one per transaction, and the log row, not the notification, is the truth.

Creating a trigger takes a short SHARE ROW EXCLUSIVE lock on the table alone; each table is
committed on its own, under the migrator's lock timeout, so a retry starts the step over.
"""

from alembic import op
from api.db.online_ddl import SET_LOCK_TIMEOUT

CHANNEL = "catalog_changes"
LOG_TABLE = "change_log"
TRIGGERS = ("log_inserted", "log_updated", "log_deleted")


def _values(alias: str, columns: tuple[str, ...]) -> str:
    pairs = ", ".join(f"'{column}', {alias}.{column}" for column in columns)
    return f"jsonb_build_object({pairs})"


def logging_function(table: str, entity: str, columns: tuple[str, ...]) -> str:
    """`log_<table>_changes()`: the rows a statement changed, into the log in id order.

    An UPDATE that changed nothing (every column equal) is not a change.
    """
    insert = f"INSERT INTO {LOG_TABLE} (entity, row_id, kind, old_values, new_values)"
    old, new = _values("o", columns), _values("n", columns)
    return f"""
CREATE OR REPLACE FUNCTION log_{table}_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {insert}
        SELECT '{entity}', n.id, 'CREATED', NULL, {new} FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        {insert}
        SELECT '{entity}', n.id, 'UPDATED', {old}, {new}
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o IS DISTINCT FROM n ORDER BY n.id;
    ELSE
        {insert}
        SELECT '{entity}', o.id, 'DELETED', {old}, NULL FROM old_rows o ORDER BY o.id;
    END IF;
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$"""  # noqa: S608 - a revision's own constants


def logging_triggers(table: str) -> list[str]:
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION log_{table}_changes()"
    return [
        f"CREATE OR REPLACE TRIGGER log_inserted AFTER INSERT ON {table} "
        f"REFERENCING NEW TABLE AS new_rows {run}",
        f"CREATE OR REPLACE TRIGGER log_updated AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {run}",
        f"CREATE OR REPLACE TRIGGER log_deleted AFTER DELETE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows {run}",
    ]


def install_change_log(table: str, entity: str, columns: tuple[str, ...]) -> None:
    """Log `table`'s changes as `entity`, keeping `columns` (what filters read)."""
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(logging_function(table, entity, columns))
        for trigger in logging_triggers(table):
            op.execute(trigger)


def remove_change_log(table: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        for trigger in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS log_{table}_changes()")
