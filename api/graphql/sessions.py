"""One database session per GraphQL request, used by one resolver at a time.

graphql-core resolves sibling fields concurrently, and an AsyncSession must not be used
concurrently, so access is serialised by a lock. A request therefore holds at most one pooled
connection, which matters behind Neon's connection limits.

Reads run under the read budget (DB_READ_TIMEOUT): Postgres itself cancels a read statement
that runs longer, so an expensive query costs the database no more than the budget. They are
also always planned with their values: asyncpg prepares each statement once per connection,
and after five runs Postgres may settle on a generic plan, which cannot know that a
`%word%` pattern is rare and walks a whole table to fill a page.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db.reads import ReadTimedOut


def read_settings(read_timeout: float | None) -> Select[tuple[str, str, str]]:
    """SET LOCAL, as a query: a transaction-mode pooler keeps it with the transaction.

    `statement_timeout` is in milliseconds, at least 1 (0 would mean no limit). A read that
    waits on another transaction's lock gives up first (`lock_timeout`, most of the budget),
    so it is answered DATABASE_BUSY (retry) rather than QUERY_TIMEOUT (ask for less).
    """
    budget = "0" if read_timeout is None else str(max(1, round(read_timeout * 1000)))
    lock_wait = "0" if read_timeout is None else str(max(1, round(read_timeout * 800)))
    return select(
        func.set_config("statement_timeout", budget, True),
        func.set_config("lock_timeout", lock_wait, True),
        func.set_config("plan_cache_mode", "force_custom_plan", True),
    )


class RequestFinished(RuntimeError):
    """A resolver still running after its operation was answered (a sibling field failed)."""


class RequestSession:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        read_timeout: float | None = None,
    ) -> None:
        self._factory = session_factory
        self._read_settings = read_settings(read_timeout)
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def _current(self) -> AsyncSession:
        if self._closed:
            raise RequestFinished("the request has already been answered")
        if self._session is None:
            self._session = self._factory()
        return self._session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """The request's read transaction, with the read settings set as it begins.

        A read that fails ends the transaction: graphql-core cancels the fields still running
        once an error has nulled their parent, and a statement cut off in flight leaves the
        connection unusable until rolled back; without the rollback every field read after it
        would fail too. Postgres stops a read at the read budget (57014); a statement that
        reaches the client's DB_STATEMENT_TIMEOUT first is a timed-out read all the same: the
        connection was there, as the settings had been sent over it.
        """
        async with self._lock:
            session = self._current()
            if not session.in_transaction():
                await session.execute(self._read_settings)
            try:
                yield session
            except TimeoutError as error:  # asyncpg gave up on a statement (DB_STATEMENT_TIMEOUT)
                await session.rollback()
                raise ReadTimedOut("a read ran past the statement timeout") from error
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own: committed when the block ends, rolled back on error."""
        async with self._lock:
            session = self._current()
            if session.in_transaction():
                await session.rollback()  # only reads happened: end that snapshot
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def close(self) -> None:
        """Wait for the statement in flight, if any, then give the connection back for good."""
        async with self._lock:
            self._closed = True
            session, self._session = self._session, None
            if session is not None:
                await session.close()
