"""Add publishers (counted), and books.publisher_id: a nullable foreign key, indexed.

Safe on a large, live catalogue. The table is new and empty; the column is nullable with no
default (a catalogue change, no rewrite); the foreign key is added NOT VALID and validated in
a transaction of its own (no write lock held while books are scanned); the indexes are built
concurrently. Every step before the builds can run twice (README, "Changing the schema"): a
retry after a lock timeout starts the revision from the top.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from sqlalchemy import text

from alembic import op
from api.db.counting import install_counting, remove_counting
from api.db.online_ddl import SET_LOCK_TIMEOUT, create_index_concurrently, drop_index_concurrently

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_books_publisher_id_publishers"
# (name, table, columns, unique)
INDEXES = (
    ("ix_publishers_name_id", "publishers", ["name", "id"], False),
    ("uq_publishers_lower_name", "publishers", ["lower(name)"], True),
    ("ix_books_publisher_id_id", "books", ["publisher_id", "id"], False),
)


def foreign_key_exists() -> bool:
    """True when a retry finds the key added by the first run (offline, SQL adds it)."""
    if op.get_context().as_sql:
        return False
    found = op.get_bind().scalar(
        text("SELECT count(*) FROM pg_constraint WHERE conname = :name"), {"name": FOREIGN_KEY}
    )
    return bool(found)


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS publishers ("
        "id serial NOT NULL, name varchar(100) NOT NULL, country varchar(100), "
        "CONSTRAINT pk_publishers PRIMARY KEY (id))"
    )
    install_counting("publishers")
    op.execute("ALTER TABLE books ADD COLUMN IF NOT EXISTS publisher_id integer")
    if not foreign_key_exists():  # NOT VALID: no scan of books under the lock
        op.execute(
            f"ALTER TABLE books ADD CONSTRAINT {FOREIGN_KEY} FOREIGN KEY (publisher_id) "
            "REFERENCES publishers (id) NOT VALID"
        )
    with op.get_context().autocommit_block():
        op.execute(SET_LOCK_TIMEOUT)
        op.execute(f"ALTER TABLE books VALIDATE CONSTRAINT {FOREIGN_KEY}")
    for name, table, columns, unique in INDEXES:
        create_index_concurrently(name, table, columns, unique=unique)


def downgrade() -> None:
    for name, *_ in reversed(INDEXES):
        drop_index_concurrently(name)
    op.execute(f"ALTER TABLE books DROP CONSTRAINT IF EXISTS {FOREIGN_KEY}")
    op.execute("ALTER TABLE books DROP COLUMN IF EXISTS publisher_id")
    remove_counting("publishers")
    op.execute("DROP TABLE IF EXISTS publishers")
