"""Indexes for every ordering and filter; exact row counts kept by triggers.

Safe on a large, live catalogue: indexes are built concurrently (writes keep flowing, and an
INVALID leftover of an interrupted build is rebuilt on the next run), and the counts are
installed without blocking writers for the length of a count. Every step may run again (a
retry after a lock timeout starts the revision from the top): tables, rows, functions and
triggers are created if missing or replaced, and the backfill keeps the base row it wrote.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import logging
from collections.abc import Sequence

from sqlalchemy import text

from alembic import op
from api.db.counting import BASE_SLOT, SLOTS, counting_function, counting_triggers
from api.db.online_ddl import SET_LOCK_TIMEOUT, create_index_concurrently, drop_index_concurrently

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED_TABLES = ("authors", "books")  # a table counted later: api.db.counting.install_counting
# (name, table, columns, using): keyset orderings (key, id), filters, trigram searches.
INDEXES = (
    ("ix_authors_name_id", "authors", ["name", "id"], None),
    ("ix_authors_created_at_id", "authors", ["created_at", "id"], None),
    ("ix_authors_lower_country_id", "authors", ["lower(country)", "id"], None),
    ("ix_authors_name_trgm", "authors", ["name gin_trgm_ops"], "gin"),
    ("ix_books_title_id", "books", ["title", "id"], None),
    ("ix_books_created_at_id", "books", ["created_at", "id"], None),
    ("ix_books_author_id_id", "books", ["author_id", "id"], None),
    ("ix_books_title_trgm", "books", ["title gin_trgm_ops"], "gin"),
)
# Served by ix_books_author_id_id from now on.
REPLACED_INDEX = ("ix_books_author_id", "books", ["author_id"], None)
TRIGRAMS = "pg_trgm"

log = logging.getLogger(__name__)


def trigrams_available() -> bool:
    """Neon and Debian's Postgres ship pg_trgm; the embedded server for development does not.

    Without it the `…Contains` filters still work, scanning: fine on a small development
    database, and the trigram indexes are left out rather than failing the migration.
    """
    if op.get_context().as_sql:
        return True
    found = op.get_bind().scalar(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = :name"),
        {"name": TRIGRAMS},
    )
    if not found:
        log.warning("%s is not available: the trigram indexes are left out", TRIGRAMS)
    return bool(found)


def backfill() -> str:
    """The rows that existed before the triggers, minus what the triggers already counted.

    One statement, so one snapshot: a write committed before it is in count(*) and, if the
    triggers saw it, in the slots too, and cancels out; a later write is in neither and the
    triggers count it. Nothing waits for the count. A re-run keeps the first base row, which
    stays right because the triggers have counted every write since.
    """
    # Every name below is one of this module's constants.
    counts = ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTED_TABLES)  # noqa: S608
    counted = ", ".join(
        f"(SELECT coalesce(sum({table}), 0) FROM row_counts)"  # noqa: S608
        for table in COUNTED_TABLES
    )
    differences = ", ".join(
        f"existing[{n}] - counted[{n}]" for n in range(1, len(COUNTED_TABLES) + 1)
    )
    columns = ", ".join(COUNTED_TABLES)
    return (
        f"INSERT INTO row_counts (slot, {columns}) "  # noqa: S608
        f"SELECT {BASE_SLOT}, {differences} "
        f"FROM (SELECT ARRAY[{counts}] AS existing, ARRAY[{counted}] AS counted) AS now "
        f"ON CONFLICT (slot) DO NOTHING"
    )


def upgrade() -> None:
    trigrams = trigrams_available()
    if trigrams:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {TRIGRAMS}")
    op.execute(SET_LOCK_TIMEOUT)  # the triggers wait for writers: briefly, then retry
    columns = ", ".join(f"{table} bigint NOT NULL DEFAULT 0" for table in COUNTED_TABLES)
    op.execute(
        f"CREATE TABLE IF NOT EXISTS row_counts "
        f"(slot smallint NOT NULL, {columns}, CONSTRAINT pk_row_counts PRIMARY KEY (slot))"
    )
    op.execute(
        f"INSERT INTO row_counts (slot) SELECT generate_series(0, {SLOTS - 1}) "
        "ON CONFLICT (slot) DO NOTHING"
    )
    for table in COUNTED_TABLES:
        op.execute(counting_function(table))
        for trigger in counting_triggers(table):
            op.execute(trigger)
    context = op.get_context()
    # The triggers commit first (a short lock per table), so that the count below sees them.
    with context.autocommit_block():
        op.execute(backfill())
    for name, table, index_columns, using in INDEXES:
        if using != "gin" or trigrams:
            create_index_concurrently(name, table, index_columns, using=using)
    drop_index_concurrently(REPLACED_INDEX[0])


def downgrade() -> None:
    name, table, index_columns, using = REPLACED_INDEX
    create_index_concurrently(name, table, index_columns, using=using)
    for name, *_ in reversed(INDEXES):
        drop_index_concurrently(name)
    for table in COUNTED_TABLES:
        for trigger in ("count_inserted", "count_deleted", "count_truncated"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS count_{table}_rows()")
    op.execute("DROP TABLE IF EXISTS row_counts")
