"""Alembic environment: async, over the direct connection, one migrator at a time."""

import asyncio
import logging.config
from typing import Any

from sqlalchemy import Connection

from alembic import context
from api.db.engine import EngineOptions, create_engine
from api.db.lineage import (
    LINEAGE_TABLE,
    ancestors,
    descends_from,
    read_lineage,
    record_lineage,
)
from api.db.migration_lock import APPLICATION_NAME, MigrationBlocked, run_serialised
from api.db.migrations import MigrationJournal, describe, migration_policy, migration_target
from api.db.models import Base
from api.db.online_ddl import SET_LOCK_TIMEOUT
from api.db.urls import DatabaseTarget

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
journal: MigrationJournal = config.attributes.get("journal") or MigrationJournal()


def include_name(name: str | None, type_: str, _: Any) -> bool:
    """Autogenerate and `alembic check` leave Alembic's own bookkeeping tables alone."""
    return not (type_ == "table" and name == LINEAGE_TABLE)


def run_migrations_offline() -> None:
    """Render the SQL (`alembic upgrade --sql`): no database, and no DATABASE_URL, needed."""
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        include_name=include_name,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    context.execute(SET_LOCK_TIMEOUT)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    """One attempt; each revision commits on its own, so a retry resumes where this stopped."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        transaction_per_migration=True,
        on_version_apply=journal.record_step,
    )
    migration = context.get_context()
    current = migration.get_current_heads()
    if journal.before is None:
        journal.before = current
    if _ahead_of_this_code(connection, current):
        return
    with context.begin_transaction():
        context.run_migrations()
    journal.after = migration.get_current_heads()
    if journal.steps:  # `alembic check` and autogenerate write nothing
        record_lineage(connection, context.script, journal.after)


def _ahead_of_this_code(connection: Connection, current: tuple[str, ...]) -> bool:
    """A later release migrated the database past this code: nothing to do, if it descends.

    A replica of the previous release that restarts (MIGRATE_ON_START) must not fail on a
    revision it has never seen; one on another branch must, in one line.
    """
    script = context.script
    known = {step.revision for step in script.walk_revisions()}
    unknown = [revision for revision in current if revision not in known]
    if not unknown:
        return False
    heads = script.get_heads()
    ancestry = {rev: ancestors(script, rev) for rev in current if rev in known}
    ancestry |= read_lineage(connection, unknown)
    if not descends_from(current, heads, ancestry):
        raise MigrationBlocked(
            f"database at revision {describe(current)}, which this code does not know and"
            f" cannot tell descends from {describe(tuple(heads))}: deploy the code that"
            " migrated it"
        )
    journal.after, journal.ahead_of = current, tuple(heads)
    return True


async def _run_async(target: DatabaseTarget) -> None:
    server_settings = {"application_name": APPLICATION_NAME}
    server_settings |= target.connect_args.get("server_settings", {})
    target = DatabaseTarget(
        url=target.url,
        connect_args=target.connect_args | {"server_settings": server_settings},
        pooled=target.pooled,
    )
    # No statement timeout: building an index on a large table may rightly take minutes.
    options = EngineOptions(pool_size=2, max_overflow=0, statement_timeout=None)
    engine = create_engine(target, options)
    try:
        await run_serialised(engine, _run_on, migration_policy(config))
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(_run_async(migration_target(config)))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
