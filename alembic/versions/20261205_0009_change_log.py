"""The change log: every committed change to authors, books and publishers, for live updates.

The tables are new and empty, so creating them and their indexes takes no lock anyone waits
for; every step can run again (IF NOT EXISTS, CREATE OR REPLACE), so a retry after a lock
timeout on a busy table's trigger starts the revision over safely.
The triggers then go on each live table one at a time (`install_change_log`), each committed
on its own under the lock timeout.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from api.db.change_log import install_change_log, remove_change_log

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "change_log"
MARKS = "change_log_marks"  # snapshots taken now and then; retention purges up to one
# Frozen at this revision: each table's entity and the columns its filters read.
LOGGED = {
    "authors": ("Author", ("name", "country")),
    "books": ("Book", ("author_id", "title", "published_year", "publisher_id")),
    "publishers": ("Publisher", ("name",)),
}


class Xid8(sa.types.UserDefinedType[int]):
    """Postgres' 64-bit transaction id (SQLAlchemy has no type for it)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "xid",
            Xid8(),
            server_default=sa.text("pg_current_xact_id()"),
            nullable=False,
        ),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("old_values", postgresql.JSONB(), nullable=True),
        sa.Column("new_values", postgresql.JSONB(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        if_not_exists=True,  # a retry after a trigger's lock timeout starts over
    )
    op.create_index(op.f(f"ix_{TABLE}_xid"), TABLE, ["xid"], if_not_exists=True)
    op.create_table(
        MARKS,
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("purged", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("taken_at", name=op.f(f"pk_{MARKS}")),
        if_not_exists=True,
    )
    op.create_index(op.f(f"ix_{TABLE}_created_at"), TABLE, ["created_at"], if_not_exists=True)
    for table, (entity, columns) in LOGGED.items():
        install_change_log(table, entity, columns)


def downgrade() -> None:
    for table in LOGGED:
        remove_change_log(table)
    op.drop_table(MARKS)
    op.drop_index(op.f(f"ix_{TABLE}_created_at"), table_name=TABLE)
    op.drop_index(op.f(f"ix_{TABLE}_xid"), table_name=TABLE)
    op.drop_table(TABLE)
