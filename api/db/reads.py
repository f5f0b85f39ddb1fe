"""A plain asyncpg pool for the query planner's reads.

A planned query is one statement in autocommit: it needs no ORM session, no transaction and
no reset when the connection goes back, and SQLAlchemy's checkout and reset cost more CPU
than the statement itself for small answers. Dead connections are handled by asyncpg (one the
server closed is replaced on acquire) and by the planner, which retries a read once.
"""

from typing import Any

import asyncpg

from api.db.engine import EngineOptions, retrying_connect
from api.db.urls import DatabaseTarget


async def _nothing_to_reset(_: Any) -> None:
    """Planned reads leave no transaction, cursor or setting behind."""


async def create_read_pool(target: DatabaseTarget, options: EngineOptions) -> asyncpg.Pool:
    """Opens no connection yet: the service starts even while the database is away."""
    args: dict[str, Any] = dict(target.connect_args)
    if target.pooled:  # behind PgBouncer in transaction mode: unnamed statements only
        args["statement_cache_size"] = 0
    args.setdefault("timeout", options.connect_timeout)
    if options.statement_timeout is not None:
        args["command_timeout"] = options.statement_timeout
    pool: asyncpg.Pool = await asyncpg.create_pool(
        target.url.set(drivername="postgresql").render_as_string(hide_password=False),
        min_size=0,
        max_size=options.pool_size,
        max_inactive_connection_lifetime=options.pool_recycle,
        connect=retrying_connect(options.connect_attempts),
        reset=_nothing_to_reset,
        **args,
    )
    return pool
