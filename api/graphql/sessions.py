"""One database session per GraphQL request, used by one resolver at a time.

graphql-core resolves sibling fields concurrently, and an AsyncSession must not be used
concurrently, so access is serialised by a lock. A request therefore holds at most one pooled
connection, which matters behind Neon's connection limits.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class RequestFinished(RuntimeError):
    """A resolver still running after its operation was answered (a sibling field failed)."""


class RequestSession:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = session_factory
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
        """The request's session; a read that fails ends its transaction.

        graphql-core cancels the fields still running once an error has nulled their parent,
        and a statement cut off in flight leaves the connection unusable until rolled back:
        without the rollback, every field read after it would fail too.
        """
        async with self._lock:
            session = self._current()
            try:
                yield session
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
