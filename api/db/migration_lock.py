"""One migrator at a time, and DDL that waits for table locks only briefly, many times over.

Two hazards shape this module:

- A migrator that waits for its turn inside a transaction deadlocks with the one building an
  index concurrently: the build waits for every open transaction, the waiter for the build's
  advisory lock. Waiters therefore poll `pg_try_advisory_lock` outside any transaction.
- DDL queued behind a long reader makes every later query on that table queue behind the DDL.
  A short `lock_timeout` bounds that queue; the migration is retried with jittered backoff
  for a configurable window, then gives up naming the table and the session in the way.
"""

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from api.db.lock_waits import LockWatch
from api.db.online_ddl import SET_LOCK_TIMEOUT
from api.settings import setting

# Any constant works; it only has to be the same for every replica of this service.
MIGRATION_LOCK_KEY = 0x6361_7461_6C6F_67  # "catalog"
LOCK_NOT_AVAILABLE = "55P03"
TURN_POLL_SECONDS = (0.05, 0.3)
# Shown in pg_stat_activity, so the owner of a blocked query can see who is migrating.
APPLICATION_NAME = "catalog-migrate"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationPolicy:
    """How long a migrator keeps trying: for table locks, and for its turn."""

    lock_window: float = setting("migration_lock_window")
    turn_timeout: float = setting("migration_turn_timeout")


class MigrationBlocked(Exception):
    """Migrate gave up; the message is one line a person can act on."""


async def run_serialised(
    engine: AsyncEngine, migrate: Callable[[Connection], None], policy: MigrationPolicy
) -> None:
    """Run `migrate` once it is this process's turn, retrying it while table locks are busy.

    `migrate` must leave each revision committed on its own (transaction_per_migration), so
    that a retry resumes after the last revision that went through.
    """
    async with engine.connect() as connection:
        driver = await _driver(connection)
        await _wait_for_turn(driver, policy.turn_timeout)
        try:
            await driver.execute(SET_LOCK_TIMEOUT)
            async with engine.connect() as observer:
                watch = LockWatch(await _driver(observer), driver.get_server_pid())
                async with watch:
                    await _migrate_while_locks_allow(connection, migrate, policy, watch)
        finally:
            await connection.rollback()
            await driver.fetchval("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _driver(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection underneath: statements sent on it open no transaction."""
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


async def _wait_for_turn(driver: asyncpg.Connection, turn_timeout: float) -> None:
    try:
        async with asyncio.timeout(turn_timeout):
            while True:
                if await driver.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY):
                    return
                await asyncio.sleep(random.uniform(*TURN_POLL_SECONDS))  # noqa: S311 (jitter)
    except TimeoutError:
        raise MigrationBlocked(
            f"another migrator has been running for over {turn_timeout:g} s"
            f" (MIGRATION_TURN_TIMEOUT): look for application_name {APPLICATION_NAME!r}"
            " in pg_stat_activity"
        ) from None


async def _migrate_while_locks_allow(
    connection: AsyncConnection,
    migrate: Callable[[Connection], None],
    policy: MigrationPolicy,
    watch: LockWatch,
) -> None:
    def before_sleep(state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        log.debug(
            "attempt %d: %s; retrying in %.1f s", state.attempt_number, watch.describe(), delay
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_lock_timeout),
        stop=stop_after_delay(policy.lock_window),
        wait=wait_random_exponential(multiplier=0.25, max=4),
        before_sleep=before_sleep,
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
    except DBAPIError as error:
        if not is_lock_timeout(error):
            raise
        attempts = retrying.statistics.get("attempt_number", 1)
        raise MigrationBlocked(
            f"gave up after {attempts} attempts in {policy.lock_window:g} s"
            f" (MIGRATION_LOCK_WINDOW): {watch.describe()}"
        ) from None


def is_lock_timeout(error: BaseException) -> bool:
    """DDL gave up waiting for a lock held by live traffic: worth another try."""
    origin: Any = getattr(error, "orig", None)
    return isinstance(error, DBAPIError) and getattr(origin, "sqlstate", None) == (
        LOCK_NOT_AVAILABLE
    )
