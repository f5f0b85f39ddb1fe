"""Record each applied head revision's ancestry, so older replicas recognise newer revisions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alembic_lineage",
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("ancestors", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_alembic_lineage")),
    )


def downgrade() -> None:
    op.drop_table("alembic_lineage")
