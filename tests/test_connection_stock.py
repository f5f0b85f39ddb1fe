"""The planner's connections (`api.db.stock`): kept, reused, and dropped when in doubt.

Each test counts connections opened and backends seen in pg_stat_activity, not time.
"""

import asyncio
import dataclasses

import asyncpg
import pytest

from api.db.engine import EngineOptions
from api.db.reads import PlannerPool, ReadTimedOut, create_planner_pool
from api.db.stock import ConnectionStock, StockClosed
from api.settings import Settings

PID = "SELECT pg_backend_pid()"


@dataclasses.dataclass
class Counted:
    """A connect function that counts what it opened."""

    dsn: str
    opened: int = 0

    async def __call__(self) -> asyncpg.Connection:
        self.opened += 1
        connection: asyncpg.Connection = await asyncpg.connect(self.dsn)
        return connection


def dsn_of(settings: Settings) -> str:
    return settings.database.url.set(drivername="postgresql").render_as_string(False)


async def backend_alive(dsn: str, pid: int) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
        )
    finally:
        await connection.close()
    return bool(found)


async def test_a_connection_given_back_is_taken_again(settings: Settings) -> None:
    connect = Counted(dsn_of(settings))
    stock = ConnectionStock(connect)
    try:
        pids = set()
        for _ in range(20):
            async with stock.acquire() as connection:
                pids.add(await connection.fetchval(PID))
        assert connect.opened == 1
        assert len(pids) == 1
        assert (stock.get_size(), stock.get_idle_size()) == (1, 1)
    finally:
        await stock.close()
    assert stock.get_size() == 0


async def test_a_server_error_keeps_the_connection_and_an_unfinished_command_drops_it(
    settings: Settings,
) -> None:
    dsn = dsn_of(settings)
    connect = Counted(dsn)
    stock = ConnectionStock(connect)
    seen: list[int] = []

    async def run(statement: str, seconds: float | None = None) -> None:
        async with stock.acquire() as connection:
            seen.append(await connection.fetchval(PID))
            await connection.fetchval(statement, timeout=seconds)

    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await run("SELECT 1 / 0")
        first = seen[0]
        assert connect.opened == 1  # the server answered: the connection is as it was
        with pytest.raises(TimeoutError):
            await run("SELECT pg_sleep(5)", seconds=0.2)
        assert seen == [first, first]
        assert stock.get_size() == 0  # cut off mid-command: closed, not handed out again
        async with stock.acquire() as connection:
            assert await connection.fetchval(PID) != first
        assert connect.opened == 2
    finally:
        await stock.close()


async def test_a_connection_the_server_closed_is_replaced(settings: Settings) -> None:
    dsn = dsn_of(settings)
    connect = Counted(dsn)
    stock = ConnectionStock(connect)
    admin = await asyncpg.connect(dsn)
    try:
        async with stock.acquire() as connection:
            first = await connection.fetchval(PID)
        await admin.execute("SELECT pg_terminate_backend($1)", first)
        for _ in range(100):  # the client hears of it when the loop reads the socket
            if stock._idle[0][0].is_closed():
                break
            await asyncio.sleep(0.02)
        async with stock.acquire() as connection:
            second = await connection.fetchval(PID)
        assert second != first
        assert connect.opened == 2
        assert stock.get_size() == 1
    finally:
        await admin.close()
        await stock.close()


async def test_idle_connections_close_after_their_lifetime(settings: Settings) -> None:
    dsn = dsn_of(settings)
    stock = ConnectionStock(Counted(dsn), idle_lifetime=0.2)
    try:

        async def hold() -> int:
            async with stock.acquire() as connection:
                pid: int = await connection.fetchval(PID)
                await asyncio.sleep(0.05)
                return pid

        pids = await asyncio.gather(hold(), hold(), hold())
        assert stock.get_size() == 3
        for _ in range(100):
            if stock.get_size() == 0:
                break
            await asyncio.sleep(0.05)
        assert stock.get_size() == 0
        await asyncio.sleep(0.2)
        assert not [pid for pid in pids if await backend_alive(dsn, pid)]
    finally:
        await stock.close()


async def test_closing_closes_idle_ones_now_and_the_rest_as_they_come_back(
    settings: Settings,
) -> None:
    dsn = dsn_of(settings)
    stock = ConnectionStock(Counted(dsn))
    idle, out = await stock.take(), await stock.take()
    idle_pid, out_pid = await idle.fetchval(PID), await out.fetchval(PID)
    stock.give_back(idle, finished=True)
    await stock.close()
    assert await backend_alive(dsn, out_pid)
    stock.give_back(out, finished=True)
    assert stock.get_size() == 0
    await asyncio.sleep(0.2)
    assert not await backend_alive(dsn, idle_pid)
    assert not await backend_alive(dsn, out_pid)
    with pytest.raises(StockClosed):
        await stock.take()


async def planner_pool(settings: Settings, **options: float) -> PlannerPool:
    return await create_planner_pool(settings.database, EngineOptions(**options))  # type: ignore[arg-type]


async def test_the_planners_reads_reuse_one_connection_and_a_cut_off_one_is_not_reused(
    settings: Settings,
) -> None:
    pool = await planner_pool(settings, read_timeout=0.3)
    try:
        pids = {await pool.fetch_value(PID, []) for _ in range(10)}
        assert len(pids) == 1
        assert pool.in_use() == 0
        with pytest.raises(ReadTimedOut):
            await pool.fetch_value("SELECT pg_sleep(5)", [])
        assert pool.pool.get_size() == 0
        assert await pool.fetch_value(PID, []) not in pids
        assert pool.gate.inside == 0
    finally:
        await pool.close()
