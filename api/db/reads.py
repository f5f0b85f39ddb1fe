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

Statements come in two kinds (`planner.compiler.CompiledPlan.custom`):
- A lean one (a plain page, a lookup, a write) holds only the conditions it was asked for.
  asyncpg prepares it once per connection, and after five runs Postgres may settle on one plan
  for any values when that plan costs no more: planning is most of a small read's work.
- A guarded one (some filter given) binds every filter and cursor, NULL when not given,
  behind `$n IS NULL OR …` guards that only planning with the values folds away; a generic
  plan keeps them and walks a whole table. It is prepared afresh for its run, which Postgres
  always plans with its values (the first five runs of a statement are), and dropped after.
Behind a transaction-mode pooler a statement prepared in one transaction may be gone in the
next, so asyncpg keeps no statement cache and sends every statement as a new unnamed one,
planned with its values the first time it is bound: both kinds are safe there as they are.
"""

import asyncio
from typing import Any

import asyncpg

from api.db.engine import EngineOptions, retrying_connect
from api.db.stock import ConnectionStock
from api.db.urls import DatabaseTarget
from api.pipeline.admission import Gate

CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}
"""The setting under which a replayed statement is planned as a guarded one always is."""


class ReadTimedOut(Exception):
    """A read ran past the read budget and was cancelled: the query, not the database."""


def read_budget(options: EngineOptions) -> float | None:
    """Seconds a read may run: its own budget, and never more than any statement may."""
    limits = [t for t in (options.read_timeout, options.statement_timeout) if t is not None]
    return min(limits, default=None)


class PlannerPool:
    """Open connections (`api.db.stock`) behind the admission gate (`pipeline.admission`).

    A queue that lets a newcomer take a just-freed connection ahead of those already waiting
    (as asyncpg's own does) leaves a few unlucky requests waiting many times over under load:
    a long latency tail. The gate admits as many requests as there are connections, in
    arrival order, keeps a bounded queue, and sheds the rest (ServerBusy) rather than letting
    them wait unbounded; the stock behind it only keeps the connections.
    """

    def __init__(
        self,
        pool: ConnectionStock,
        size: int,
        read_timeout: float | None = None,
        queue_limit: int = 64,
        write_patience: float | None = None,
        name: str = "planner",
        statement_cache: bool = True,
    ) -> None:
        self.pool = pool
        self.statement_cache = statement_cache  # False behind a transaction-mode pooler
        self.size = size
        self.read_timeout = read_timeout
        self.write_patience = write_patience
        self.gate = Gate(name, size, queue_limit)

    async def fetch_value(
        self, sql: str, params: list[Any], *, read: bool = True, custom: bool = False
    ) -> Any:
        """The first column of the first row, on a connection taken in arrival order.

        The wait for a connection and a read's statement share one budget (the read budget):
        a read that waited most of it has only the rest to run. Past it, a read that was
        waiting is shed (ServerBusy) and one that was running is cut off (ReadTimedOut). A
        write (`read=False`) waits no longer than the statement timeout, then has the pool's
        statement timeout. `custom`: plan it with its values (a guarded statement).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        patience = self.read_timeout if read else self.write_patience
        deadline = None if not read or self.read_timeout is None else started + self.read_timeout
        async with self.gate.slot(patience):
            stock = self.pool
            connection = await stock.take()
            finished = False
            try:
                value = await self.run(connection, sql, params, custom, deadline)
                finished = True
                return value
            except asyncpg.PostgresError:  # the server answered: the connection is as it was
                finished = True
                raise
            except TimeoutError:
                if deadline is None:
                    raise
                raise ReadTimedOut(f"a read ran past {self.read_timeout} s") from None
            finally:
                stock.give_back(connection, finished)

    async def run(
        self,
        connection: asyncpg.Connection,
        sql: str,
        params: list[Any],
        custom: bool,
        deadline: float | None,
    ) -> Any:
        """One statement on a connection already taken. `deadline` (loop time): None for the
        pool's statement timeout."""
        loop = asyncio.get_running_loop()

        def remaining() -> float | None:
            return None if deadline is None else max(0.001, deadline - loop.time())

        if custom and self.statement_cache:  # prepared for this run alone, closed when dropped
            statement = await connection.prepare(sql, timeout=remaining())
            return await statement.fetchval(*params, timeout=remaining())
        return await connection.fetchval(sql, *params, timeout=remaining())

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
        args["statement_cache_size"] = 0  # each planned with its values
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
    dsn = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connect = retrying_connect(options.connect_attempts)

    async def open_connection() -> asyncpg.Connection:
        connection: asyncpg.Connection = await connect(dsn, **args)
        return connection

    return PlannerPool(
        ConnectionStock(open_connection, idle_lifetime=options.pool_recycle),
        options.pool_size,
        read_budget(options),
        options.queue_limit,
        write_patience=options.statement_timeout,
        name=name,
        statement_cache=not target.pooled,
    )
