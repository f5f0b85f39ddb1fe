"""Idempotency keys: each keyed write's response, stored in the write's own transaction.

A new, empty table: nothing running reads it yet, so creating it (and its index, on no rows)
takes no lock anyone waits for.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "idempotency_keys"
# Frozen copies of api.db.models' values at this revision (a revision never follows the code).
CALLER_MAX = 255
KEY_MAX = 255


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("caller", sa.String(length=CALLER_MAX), nullable=False),
        sa.Column("key", sa.String(length=KEY_MAX), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response", postgresql.BYTEA(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_created_at"), TABLE, ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{TABLE}_created_at"), table_name=TABLE)
    op.drop_table(TABLE)
