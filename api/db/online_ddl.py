"""Index builds and drops that never block writes, for a revision's upgrade() and downgrade().

`CREATE INDEX CONCURRENTLY` cannot run inside a transaction, and when it fails (a lock
timeout, a cancel, a duplicate key) it leaves an INVALID index behind: Postgres keeps
maintaining it but never reads it, and a plain re-run fails with "already exists". These
helpers drop such a leftover and build it again, so running a migration twice converges.

Names and tables are quoted here; `columns` and `where` are SQL written by the revision's
author (expressions such as "lower(country)" or "title gin_trgm_ops"), never user input.

The build commits whatever the revision did before it (Alembic's autocommit_block), and a
retry after a lock timeout runs the revision again from the top: a build may follow only
steps that can run twice (IF NOT EXISTS, CREATE OR REPLACE); see README, "Changing the schema".
"""

from collections.abc import Sequence

from sqlalchemy import text

from alembic import op

# Every DDL statement gives up waiting for a table lock after this long, so that the queries
# queued behind it wait no longer either; the migrator retries with backoff instead.
LOCK_TIMEOUT = "1s"
SET_LOCK_TIMEOUT = f"SET lock_timeout = '{LOCK_TIMEOUT}'"


def create_index_concurrently(
    name: str,
    table: str,
    columns: Sequence[str],
    *,
    using: str | None = None,
    where: str | None = None,
    unique: bool = False,
) -> None:
    """Build index `name` without blocking writes; keep a valid one, rebuild an INVALID one."""
    if not columns:
        raise ValueError(f"index {name} needs at least one column")
    parts = [
        "CREATE UNIQUE INDEX" if unique else "CREATE INDEX",
        f"CONCURRENTLY IF NOT EXISTS {_quote(name)} ON {_quote(table)}",
    ]
    if using:
        parts.append(f"USING {using}")
    parts.append(f"({', '.join(columns)})")
    if where:
        parts.append(f"WHERE {where}")
    context = op.get_context()
    with context.autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        if not context.as_sql and _is_invalid_index(name):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(name)}")
        op.execute(" ".join(parts))


def drop_index_concurrently(name: str) -> None:
    """Drop index `name` (if it exists) without blocking reads or writes on its table."""
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(name)}")


def _is_invalid_index(name: str) -> bool:
    """True only for an index of that name left INVALID by a failed concurrent build."""
    connection = op.get_bind()
    validity = connection.execute(
        text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
        {"name": _quote(name)},
    ).scalar()
    return validity is False


def _quote(identifier: str) -> str:
    preparer = op.get_context().dialect.identifier_preparer
    schema, dot, name = identifier.rpartition(".")
    if dot:
        return f"{preparer.quote_schema(schema)}.{preparer.quote(name)}"
    return str(preparer.quote(name))
