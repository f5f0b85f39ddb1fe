"""Persisted documents: GraphQL documents stored under their ids, shared by every replica.

A new, empty table: nothing running reads it yet, so creating it takes no lock anyone waits
for. Its size per row is bounded here, by a CHECK, whatever the service's settings say.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "persisted_documents"
# Frozen copies of api.db.models' values at this revision (a revision never follows the code).
ID_MAX = 200
BODY_MAX_BYTES = 1024 * 1024
SOURCES = ("manifest", "apq")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=ID_MAX), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.CheckConstraint(
            f"octet_length(body) <= {BODY_MAX_BYTES}", name=op.f(f"ck_{TABLE}_body_size")
        ),
        sa.CheckConstraint(
            "source IN (" + ", ".join(f"'{source}'" for source in SOURCES) + ")",
            name=op.f(f"ck_{TABLE}_source"),
        ),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
