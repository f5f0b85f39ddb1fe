"""Alembic environment: async, over the direct connection, one migrator at a time."""

import asyncio
import logging.config

from sqlalchemy import Connection

from alembic import context
from api.db.engine import EngineOptions, create_engine
from api.db.migrations import migration_target, run_serialised
from api.db.models import Base
from api.db.online_ddl import SET_LOCK_TIMEOUT
from api.db.urls import DatabaseTarget

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Render the SQL (`alembic upgrade --sql`): no database, and no DATABASE_URL, needed."""
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    context.execute(SET_LOCK_TIMEOUT)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(target: DatabaseTarget) -> None:
    engine = create_engine(target, EngineOptions(pool_size=1, max_overflow=0))
    try:
        async with engine.connect() as connection:
            await run_serialised(connection, _run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    asyncio.run(_run_async(migration_target(config)))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
