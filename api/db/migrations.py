"""Run Alembic from code, one migrator at a time, and tell whether a database is at head."""

import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from alembic import command
from api.db.urls import DatabaseTarget

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
# Any constant works; it only has to be the same for every replica of this service.
MIGRATION_LOCK_KEY = 0x6361_7461_6C6F_67  # "catalog"
LOCK_TIMEOUT = "5s"
LOCK_ATTEMPTS = 5
LOCK_NOT_AVAILABLE = "55P03"

log = logging.getLogger(__name__)


def alembic_config(target: DatabaseTarget | None = None, *, quiet: bool = False) -> Config:
    """Alembic's config; `target` overrides the URL env.py would read from the settings."""
    config = Config(str(ALEMBIC_INI))
    if target is not None:
        config.attributes["database_target"] = target
    config.attributes["configure_logger"] = not quiet
    return config


def migration_target(config: Config) -> DatabaseTarget:
    target = config.attributes.get("database_target")
    if isinstance(target, DatabaseTarget):
        return target
    from api.settings import Settings

    return Settings().migration_database


@cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database is at; empty when it was never migrated."""
    exists = await connection.scalar(select(func.to_regclass("alembic_version")))
    if exists is None:
        return frozenset()
    rows = await connection.scalars(text("SELECT version_num FROM alembic_version"))
    return frozenset(rows)


async def run_serialised(
    connection: AsyncConnection, migrate: Callable[[Connection], None]
) -> None:
    """Run `migrate` while holding an advisory lock, so concurrent replicas migrate once.

    The lock is taken and released outside the migration's transaction: a waiting replica
    only proceeds after the first one's DDL is committed, then finds nothing left to do.
    `lock_timeout` is set after the wait, so DDL never queues forever behind live traffic.
    """
    await connection.scalar(select(func.pg_advisory_lock(MIGRATION_LOCK_KEY)))
    await connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
    await connection.commit()
    retrying = AsyncRetrying(
        retry=retry_if_exception(_is_lock_timeout),
        stop=stop_after_attempt(LOCK_ATTEMPTS),
        wait=wait_random_exponential(multiplier=1, max=10),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                try:
                    await connection.run_sync(migrate)
                    await connection.commit()
                except BaseException:
                    await connection.rollback()
                    raise
    finally:
        await connection.rollback()
        await connection.scalar(select(func.pg_advisory_unlock(MIGRATION_LOCK_KEY)))
        await connection.commit()


def _is_lock_timeout(error: BaseException) -> bool:
    """DDL gave up waiting for a table lock held by live traffic: worth another try."""
    return (
        isinstance(error, DBAPIError)
        and getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
    )


def upgrade_to_head(target: DatabaseTarget | None = None, *, quiet: bool = False) -> None:
    """Blocking: call from a thread or before the event loop starts."""
    command.upgrade(alembic_config(target, quiet=quiet), "head")


def downgrade_to(revision: str, target: DatabaseTarget | None = None) -> None:
    command.downgrade(alembic_config(target, quiet=True), revision)
