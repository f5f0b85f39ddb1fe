"""Test-only revisions on top of the project's own, in a temporary script directory.

The project's revisions are copied next to the scratch ones, and an alembic.ini points there
(script_location stays the project's, for env.py), so both in-process Alembic commands and a
`python -m api migrate` subprocess (through ALEMBIC_CONFIG) see the longer chain.
"""

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from api.db.migration_lock import MigrationPolicy
from api.db.migrations import ALEMBIC_INI, PROJECT_ROOT, alembic_config
from api.db.urls import DatabaseTarget

VERSIONS = PROJECT_ROOT / "alembic" / "versions"

REVISION_TEMPLATE = '''\
"""{message}"""

import sqlalchemy as sa

from alembic import op
from api.db import counting, online_ddl

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None
{extra}

def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def project_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@dataclass
class ScratchScripts:
    """A versions directory: the project's revisions, then the ones a test adds."""

    root: Path
    head: str = field(default_factory=project_head)
    added: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.copytree(VERSIONS, self.versions, ignore=shutil.ignore_patterns("__pycache__"))
        locations = f"script_location = {PROJECT_ROOT / 'alembic'}\n"
        locations += f"version_locations = {self.versions}"
        ini = ALEMBIC_INI.read_text().replace("script_location = %(here)s/alembic", locations)
        self.ini.write_text(ini.replace("%(here)s/", f"{PROJECT_ROOT}/"))

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def ini(self) -> Path:
        return self.root / "alembic.ini"

    def add(
        self,
        revision: str,
        upgrade: str,
        downgrade: str = "pass",
        *,
        extra: str = "",
        message: str = "Scratch revision.",
    ) -> str:
        """Chain `revision` on the current head; bodies are Python statements, dedented."""
        source = REVISION_TEMPLATE.format(
            message=message,
            revision=revision,
            down_revision=self.head,
            extra=textwrap.dedent(extra),
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        )
        (self.versions / f"{revision}_scratch.py").write_text(source)
        self.head = revision
        self.added.append(revision)
        return revision

    def config(
        self, target: DatabaseTarget | None = None, policy: MigrationPolicy | None = None
    ) -> Config:
        config = alembic_config(target, quiet=True, policy=policy)
        config.set_main_option("version_locations", str(self.versions))
        return config

    def path_of(self, revision: str) -> Path:
        return self.versions / f"{revision}_scratch.py"
