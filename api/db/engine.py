"""The async engine and session factory, configured for direct or pooled endpoints.

Serverless Postgres suspends when idle: the first connection after that waits for the compute
to wake, and connections idle in the pool may have been cut. Connects are retried with
backoff, and a connection that sat idle is pinged before use (one busy serving requests is
not: a ping per request would cost a round trip each), and old ones are recycled.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from api.db.statements import count_statements
from api.db.unreachable import connect_failure, host_of, is_permanent
from api.db.urls import DatabaseTarget
from api.settings import setting

log = logging.getLogger(__name__)

# Worth retrying: the server is not there yet (starting, waking, restarting).
TRANSIENT_CONNECT_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
)


@dataclass(frozen=True)
class EngineOptions:
    """How the engine connects and pools; `settings.options(EngineOptions)` fills it."""

    pool_size: int = setting("db_pool_size")
    max_overflow: int = setting("db_max_overflow")
    pool_recycle: int = 240
    connect_timeout: float = setting("db_connect_timeout")
    connect_attempts: int = setting("db_connect_attempts")
    ping_after_idle: float = 5.0
    statement_timeout: float | None = setting("db_statement_timeout")
    read_timeout: float | None = setting("db_read_timeout")
    queue_limit: int = setting("db_queue_limit")


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def connect_args_for(target: DatabaseTarget) -> dict[str, Any]:
    """asyncpg arguments; behind a transaction-mode pooler no prepared statement may be reused.

    PgBouncer in transaction mode hands each transaction a different server connection, so
    asyncpg's cached, named prepared statements collide or vanish. Unique names and no caches
    keep every statement within the transaction that prepared it.
    """
    args = dict(target.connect_args)
    if target.pooled:
        args["statement_cache_size"] = 0
        args["prepared_statement_cache_size"] = 0
        args["prepared_statement_name_func"] = _unique_statement_name
    return args


def _worth_retrying(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_CONNECT_ERRORS) and not is_permanent(error)


def _note_retry(host: str, attempts: int) -> Any:
    """A debug line per retry: the final failure is what a person acts on, and says it all."""

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = (connect_failure(error, host) if error else None) or repr(error)
        pause = state.next_action.sleep if state.next_action else 0.0
        log.debug(
            "%s (attempt %d of %d); trying again in %.1f s",
            reason,
            state.attempt_number,
            attempts,
            pause,
        )

    return note


def retrying_connect(attempts: int) -> Any:
    """asyncpg.connect, retried with jittered exponential backoff while the server is away.

    A host name that does not resolve is not retried: no wait makes it exist.
    """

    async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        host = host_of(kwargs.get("host"), kwargs.get("port"))
        retrying = AsyncRetrying(
            retry=retry_if_exception(_worth_retrying),
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=0.25, max=4),
            before_sleep=_note_retry(host, attempts),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                connection: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
                tries = attempt.retry_state.attempt_number
                if tries > 1:
                    log.info("connected to %s at attempt %d of %d", host, tries, attempts)
                return connection
        raise AssertionError("unreachable: tenacity reraises the last error")

    return connect


def create_engine(target: DatabaseTarget, options: EngineOptions | None = None) -> AsyncEngine:
    """An engine that retries connects and counts its statements (for logs and N+1 tests)."""
    options = options or EngineOptions()
    connect_args = connect_args_for(target)
    connect_args.setdefault("timeout", options.connect_timeout)
    if options.statement_timeout is not None:
        connect_args["command_timeout"] = options.statement_timeout
    engine = create_async_engine(
        target.url,
        connect_args=connect_args,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_recycle=options.pool_recycle,
    )
    ping_if_idle(engine, options.ping_after_idle)
    connect = retrying_connect(options.connect_attempts)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _use_retrying_connect(
        dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        cparams["async_creator_fn"] = connect

    count_statements(engine)
    return engine


def ping_if_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Replace a pooled connection that is dead before anyone uses it.

    One the server closed (restart, suspended compute) is known without a round trip; one idle
    for `idle_seconds` or more is pinged, in case it was cut without a word. Raising
    DisconnectionError makes the pool discard the connection and take another.
    """

    def stamp(_: Any, record: Any, *__: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, _: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():  # the server said goodbye: free to know
            raise DisconnectionError("the server closed the connection")
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise DisconnectionError("connection was lost while idle") from error

    event.listen(engine.sync_engine, "connect", stamp)
    event.listen(engine.sync_engine, "checkin", stamp)
    event.listen(engine.sync_engine, "checkout", check)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
