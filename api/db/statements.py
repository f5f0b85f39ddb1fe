"""Count the SQL statements each unit of work sends, so N+1 regressions are measurable."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class StatementCounter:
    count: int = 0


_current: ContextVar[StatementCounter | None] = ContextVar("statement_counter", default=None)


@contextmanager
def statement_counter() -> Iterator[StatementCounter]:
    """Count the statements sent from this context (and the tasks it spawns) until exit."""
    counter = StatementCounter()
    token = _current.set(counter)
    try:
        yield counter
    finally:
        _current.reset(token)


def _on_execute(*_: Any) -> None:
    counter = _current.get()
    if counter is not None:
        counter.count += 1


def count_statements(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "before_cursor_execute", _on_execute)
