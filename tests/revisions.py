"""Migration revisions read from the scripts, so adding a migration changes no test.

FIRST, the base revision, predates `authors.country`: tests that need a database behind
head (a column the code reads is missing) migrate to it.
"""

from alembic.script import ScriptDirectory

from api.db.migrations import alembic_config

SCRIPTS = ScriptDirectory.from_config(alembic_config())
FIRST = str(SCRIPTS.get_base())
HEAD = str(SCRIPTS.get_current_head())


def upgrade_steps() -> list[tuple[str, str]]:
    """(from, to) for each migration, oldest first; the first comes from "" (an empty database)."""
    scripts = reversed(list(SCRIPTS.walk_revisions()))
    return [(str(script.down_revision or ""), script.revision) for script in scripts]
