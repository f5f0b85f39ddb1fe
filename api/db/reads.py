"""A plain asyncpg pool for the query planner's reads.

A planned query is one statement in autocommit: it needs no ORM session, no transaction and
no reset when the connection goes back, and SQLAlchemy's checkout and reset cost more CPU
than the statement itself for small answers. Dead connections are handled by asyncpg (one the
server closed is replaced on acquire) and by the planner, which retries a read once.
"""

import asyncio
from typing import Any

import asyncpg

from api.db.engine import EngineOptions, retrying_connect
from api.db.urls import DatabaseTarget


async def _nothing_to_reset(_: Any) -> None:
    """Planned reads leave no transaction, cursor or setting behind."""


class ReadPool:
    """asyncpg's pool behind a first-come, first-served gate.

    asyncpg's own queue lets a newcomer take a just-freed connection ahead of those already
    waiting, so under load a few unlucky requests wait many times over: a long latency tail.
    The gate (an asyncio.Semaphore, which is FIFO) admits as many requests as there are
    connections, in arrival order.
    """

    def __init__(self, pool: asyncpg.Pool, size: int) -> None:
        self.pool = pool
        self.size = size
        self._gate = asyncio.Semaphore(size)

    async def fetch_value(self, sql: str, params: list[Any]) -> Any:
        """The first column of the first row, on a connection taken in arrival order."""
        async with self._gate, self.pool.acquire() as connection:
            return await connection.fetchval(sql, *params)

    def in_use(self) -> int:
        return self.pool.get_size() - self.pool.get_idle_size()

    async def close(self) -> None:
        await self.pool.close()


async def create_read_pool(target: DatabaseTarget, options: EngineOptions) -> ReadPool:
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
    return ReadPool(pool, options.pool_size)
