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

from api.db.triggers import drop_triggers, install_triggers, statement_triggers

CHANNEL = "catalog_changes"
LOG_TABLE = "change_log"
TRIGGERS = {"log_inserted": "INSERT", "log_updated": "UPDATE", "log_deleted": "DELETE"}


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
    return statement_triggers(table, f"log_{table}_changes", TRIGGERS)


def install_change_log(table: str, entity: str, columns: tuple[str, ...]) -> None:
    """Log `table`'s changes as `entity`, keeping `columns` (what filters read)."""
    install_triggers(logging_function(table, entity, columns), logging_triggers(table))


def remove_change_log(table: str) -> None:
    drop_triggers(table, f"log_{table}_changes", TRIGGERS)
