"""Run Alembic from code, and tell which revisions a database and this code are at."""

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from alembic import command
from api.db.lineage import ancestors
from api.db.migration_lock import MigrationPolicy
from api.db.urls import DatabaseTarget

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(
    target: DatabaseTarget | None = None,
    *,
    quiet: bool = False,
    policy: MigrationPolicy | None = None,
) -> Config:
    """Alembic's config; `target` and `policy` override what env.py would read from settings.

    ALEMBIC_CONFIG names another alembic.ini, as it does for Alembic's own command line.
    """
    config = Config(os.environ.get("ALEMBIC_CONFIG") or str(ALEMBIC_INI))
    if target is not None:
        config.attributes["database_target"] = target
    if policy is not None:
        config.attributes["migration_policy"] = policy
    config.attributes["configure_logger"] = not quiet
    return config


def migration_target(config: Config) -> DatabaseTarget:
    target = config.attributes.get("database_target")
    if isinstance(target, DatabaseTarget):
        return target
    from api.settings import Settings

    return Settings().migration_database


def migration_policy(config: Config) -> MigrationPolicy:
    """The caller's policy; the defaults when called from code; the settings' otherwise."""
    policy = config.attributes.get("migration_policy")
    if isinstance(policy, MigrationPolicy):
        return policy
    if "database_target" in config.attributes:
        return MigrationPolicy()
    from api.settings import Settings

    return Settings().options(MigrationPolicy)


@cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


@cache
def code_lineage() -> dict[str, frozenset[str]]:
    """Every revision this code knows, with the revisions it descends from."""
    script = ScriptDirectory.from_config(alembic_config())
    return {step.revision: ancestors(script, step.revision) for step in script.walk_revisions()}


async def current_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at; empty when it was never migrated."""
    exists = await connection.scalar(select(func.to_regclass("alembic_version")))
    if exists is None:
        return frozenset()
    rows = await connection.scalars(text("SELECT version_num FROM alembic_version"))
    return frozenset(rows)


def describe(revisions: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(revisions)) or "base"


@dataclass
class MigrationJournal:
    """What one migrate run did, filled in by env.py (across lock-timeout retries)."""

    before: tuple[str, ...] | None = None
    after: tuple[str, ...] = ()
    steps: list[str] = field(default_factory=list)
    # Set when the database is already past this code's heads (a later release migrated it).
    ahead_of: tuple[str, ...] | None = None

    def record_step(
        self,
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        """Alembic's on_version_apply hook: called once per revision applied or undone."""
        self.steps.append(step.up_revision_id or "base")

    def summary(self) -> str:
        if self.ahead_of is not None:
            return (
                f"database at {describe(self.after)}, ahead of this code's head"
                f" {describe(self.ahead_of)}: nothing to do"
            )
        if not self.steps:
            return f"already at head {describe(self.after)}"
        count = len(self.steps)
        plural = "revision" if count == 1 else "revisions"
        return (
            f"migrated {describe(self.before or ())} -> {describe(self.after)} ({count} {plural})"
        )


def upgrade_to_head(
    target: DatabaseTarget | None = None,
    *,
    quiet: bool = False,
    policy: MigrationPolicy | None = None,
) -> MigrationJournal:
    """Blocking: call from a thread or before the event loop starts."""
    config = alembic_config(target, quiet=quiet, policy=policy)
    journal = config.attributes["journal"] = MigrationJournal()
    command.upgrade(config, "head")
    return journal


def downgrade_to(revision: str, target: DatabaseTarget | None = None) -> MigrationJournal:
    config = alembic_config(target, quiet=True)
    journal = config.attributes["journal"] = MigrationJournal()
    command.downgrade(config, revision)
    return journal
