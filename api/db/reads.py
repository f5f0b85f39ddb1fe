"""A plain asyncpg pool for the query planner's statements, one per database endpoint.

The primary's pool runs planned writes and the reads that must see them (and every read when
no replica is configured); each read replica has a pool of its own for planned reads
(`api.db.replicas`).

A planned query is one statement in autocommit: it needs no ORM session, no transaction and
no reset when the connection goes back, and SQLAlchemy's checkout and reset cost more CPU
than the statement itself for small answers. Dead connections are handled by asyncpg (one the
server closed is replaced on acquire) and by the planner, which retries a read once.

A read gets the read budget: asyncpg stops waiting when it runs out and sends Postgres a
cancel request, so the statement stops too. Being per call, it needs no session setting, which
a transaction-mode pooler could not keep between statements.

Every statement is planned with its values (a custom plan). The planner binds every filter and
cursor, NULL when not given, behind `$n IS NULL OR …` guards that only planning with the values
folds away; a generic plan keeps them and walks a whole table. asyncpg prepares each statement
once per connection, and after five runs Postgres may switch it to a generic plan, so a direct
connection starts with `plan_cache_mode = force_custom_plan`. Behind a transaction-mode pooler
that startup setting cannot pass (PgBouncer refuses startup parameters it does not track), and
none is needed: with no statement cache asyncpg sends every statement as a new unnamed one,
which Postgres always plans with its values the first time it is bound.
"""

import asyncio
from typing import Any

import asyncpg

from api.db.engine import EngineOptions, retrying_connect
from api.db.urls import DatabaseTarget
from api.pipeline.admission import Gate

CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}
"""The setting a direct connection starts with: plans made with the values, every time."""


class ReadTimedOut(Exception):
    """A read ran past the read budget and was cancelled: the query, not the database."""


def read_budget(options: EngineOptions) -> float | None:
    """Seconds a read may run: its own budget, and never more than any statement may."""
    limits = [t for t in (options.read_timeout, options.statement_timeout) if t is not None]
    return min(limits, default=None)


async def _nothing_to_reset(_: Any) -> None:
    """Planned reads leave no transaction, cursor or setting behind."""


class PlannerPool:
    """asyncpg's pool behind the admission gate (`pipeline.admission.Gate`).

    asyncpg's own queue lets a newcomer take a just-freed connection ahead of those already
    waiting, so under load a few unlucky requests wait many times over: a long latency tail.
    The gate admits as many requests as there are connections, in arrival order, keeps a
    bounded queue, and sheds the rest (ServerBusy) rather than letting them wait unbounded.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        size: int,
        read_timeout: float | None = None,
        queue_limit: int = 64,
        write_patience: float | None = None,
        name: str = "planner",
    ) -> None:
        self.pool = pool
        self.size = size
        self.read_timeout = read_timeout
        self.write_patience = write_patience
        self.gate = Gate(name, size, queue_limit)

    async def fetch_value(self, sql: str, params: list[Any], *, read: bool = True) -> Any:
        """The first column of the first row, on a connection taken in arrival order.

        The wait for a connection and a read's statement share one budget (the read budget):
        a read that waited most of it has only the rest to run. Past it, a read that was
        waiting is shed (ServerBusy) and one that was running is cut off (ReadTimedOut). A
        write (`read=False`) waits no longer than the statement timeout, then has the pool's
        statement timeout.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        patience = self.read_timeout if read else self.write_patience
        async with self.gate.slot(patience), self.pool.acquire() as connection:
            if not read or self.read_timeout is None:
                return await connection.fetchval(sql, *params)
            remaining = max(0.001, self.read_timeout - (loop.time() - started))
            try:
                return await connection.fetchval(sql, *params, timeout=remaining)
            except TimeoutError:
                raise ReadTimedOut(f"a read ran past {self.read_timeout} s") from None

    def in_use(self) -> int:
        return self.pool.get_size() - self.pool.get_idle_size()

    async def close(self) -> None:
        await self.pool.close()


async def create_planner_pool(
    target: DatabaseTarget,
    options: EngineOptions,
    *,
    name: str = "planner",
    application_name: str | None = None,
) -> PlannerPool:
    """Opens no connection yet: the service starts even while the database is away.
    `application_name`: what pg_stat_activity shows for its connections, if not the URL's."""
    args: dict[str, Any] = dict(target.connect_args)
    if application_name is not None:
        args["server_settings"] = {
            **args.get("server_settings", {}),
            "application_name": application_name,
        }
    if target.pooled:  # behind PgBouncer in transaction mode: unnamed statements only
        args["statement_cache_size"] = 0  # each planned with its values: no setting needed
    else:
        args["server_settings"] = {**args.get("server_settings", {}), **CUSTOM_PLANS}
    args.setdefault("timeout", options.connect_timeout)
    if options.statement_timeout is not None:
        args["command_timeout"] = options.statement_timeout
    budget = read_budget(options)
    if budget is not None and not target.pooled:
        # A statement waiting on another transaction's lock gives up at most of the read
        # budget (55P03): answered DATABASE_BUSY, not QUERY_TIMEOUT. A transaction-mode
        # pooler cannot carry a startup setting; behind one, such a read is a QUERY_TIMEOUT.
        args["server_settings"] = {
            **args.get("server_settings", {}),
            "lock_timeout": str(max(1, round(budget * 800))),
        }
    pool: asyncpg.Pool = await asyncpg.create_pool(
        target.url.set(drivername="postgresql").render_as_string(hide_password=False),
        min_size=0,
        max_size=options.pool_size,
        max_inactive_connection_lifetime=options.pool_recycle,
        connect=retrying_connect(options.connect_attempts),
        reset=_nothing_to_reset,
        **args,
    )
    return PlannerPool(
        pool,
        options.pool_size,
        read_budget(options),
        options.queue_limit,
        write_patience=options.statement_timeout,
        name=name,
    )
