"""The async engine and session factory, configured for direct or pooled endpoints."""

from typing import Any
from uuid import uuid4

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.db.statements import count_statements
from api.db.urls import DatabaseTarget


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


def create_engine(
    target: DatabaseTarget, *, pool_size: int = 10, max_overflow: int = 5
) -> AsyncEngine:
    """An engine that counts its statements (for logs and the N+1 tests)."""
    engine = create_async_engine(
        target.url,
        connect_args=connect_args_for(target),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )
    count_statements(engine)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
