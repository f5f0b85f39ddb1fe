"""Statement-level triggers, for a revision: one function run once per statement, whatever
its row count, reading the statement's transition tables (`new_rows`, `old_rows`).

The row counts (`api.db.counting`) and the change log (`api.db.change_log`) are both kept
this way. A function and its triggers go in as one committed step under the migrator's lock
timeout (creating a trigger takes a short SHARE ROW EXCLUSIVE lock on its table alone), and
every statement can run again, so a retry after a lock timeout starts the step over.
"""

from collections.abc import Iterable, Mapping

from alembic import op
from api.db.online_ddl import SET_LOCK_TIMEOUT

# The transition tables Postgres gives a statement-level trigger on each event.
TRANSITION_TABLES = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows ",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
    "DELETE": "REFERENCING OLD TABLE AS old_rows ",
    "TRUNCATE": "",
}


def statement_triggers(table: str, function: str, events: Mapping[str, str]) -> list[str]:
    """`CREATE OR REPLACE TRIGGER` for each trigger name and its event, running `function()`."""
    run = f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    return [
        f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} {TRANSITION_TABLES[event]}{run}"
        for name, event in events.items()
    ]


def install_triggers(function: str, triggers: Iterable[str]) -> None:
    """`function` (its CREATE OR REPLACE FUNCTION) and then its triggers, committed together."""
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(function)
        for trigger in triggers:
            op.execute(trigger)


def drop_triggers(table: str, function: str, triggers: Iterable[str]) -> None:
    """The triggers first, then the function they run, committed together."""
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        for trigger in triggers:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
