<%!
    def names(value):
        """Revision ids as a tuple, whatever Alembic passes (None, a string, a sequence)."""
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)

    def literal(value):
        """A Python literal in ruff's quote style: None, "id", or ("a", "b")."""
        if value is None:
            return "None"
        if isinstance(value, str):
            return '"%s"' % value
        quoted = ['"%s"' % item for item in value]
        return "(%s)" % (", ".join(quoted) + ("," if len(quoted) == 1 else ""))
%>\
<%
    body = (upgrades or "") + (downgrades or "")
%>\
"""${message}

Revision ID: ${up_revision}
Revises:${"".join(" " + name for name in names(down_revision))}
Create Date: ${create_date}
"""

from collections.abc import Sequence
% if "sa." in body or imports:

% endif
% if "sa." in body:
import sqlalchemy as sa
% endif
% if imports:
${imports}
% endif
% if "op." in body:

from alembic import op
% endif

# Alembic's operations: from alembic import op. Index builds and drops: api.db.online_ddl
# (CONCURRENTLY, rebuilt if left INVALID). python -m api lint-migrations flags the rest of
# what would lock a busy table.

revision: str = ${literal(up_revision)}
down_revision: str | Sequence[str] | None = ${literal(down_revision)}
branch_labels: str | Sequence[str] | None = ${literal(branch_labels)}
depends_on: str | Sequence[str] | None = ${literal(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
