"""Add books.published_year (nullable), with indexes for its ordering and its range filters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op
from api.db.online_ddl import create_index_concurrently, drop_index_concurrently

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PUBLISHED_YEAR sorts a missing year after every year (api.catalog.entities): the same
# expression in the index lets keyset pages walk it.
ORDER_KEY = "coalesce(published_year, 2147483647)"


def upgrade() -> None:
    # Nullable with no default: a catalogue change only, no table rewrite. IF NOT EXISTS, as a
    # retry of this revision (after a lock timeout in an index build) starts from the top.
    op.execute("ALTER TABLE books ADD COLUMN IF NOT EXISTS published_year integer")
    create_index_concurrently("ix_books_published_year_order", "books", [ORDER_KEY, "id"])
    create_index_concurrently("ix_books_published_year", "books", ["published_year"])


def downgrade() -> None:
    drop_index_concurrently("ix_books_published_year")
    drop_index_concurrently("ix_books_published_year_order")
    op.drop_column("books", "published_year")
