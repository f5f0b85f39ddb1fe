"""Count the SQL statements each unit of work sends, so N+1 regressions are measurable."""

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass
class StatementCounter:
    """Counters nest (a test around a request around its queries); each sees its inner ones."""

    count: int = 0
    parent: "StatementCounter | None" = None

    def add(self, statements: int = 1) -> None:
        counter: StatementCounter | None = self
        while counter is not None:
            counter.count += statements
            counter = counter.parent


_current: ContextVar[StatementCounter | None] = ContextVar("statement_counter", default=None)


class statement_counter:
    """Count the statements sent from this context (and the tasks it spawns) until exit.

    A class rather than @contextmanager: it runs once per request, and a generator costs more.
    """

    def __enter__(self) -> StatementCounter:
        self.counter = StatementCounter(parent=_current.get())
        self.token = _current.set(self.counter)
        return self.counter

    def __exit__(self, *_: object) -> None:
        _current.reset(self.token)


def count_statement() -> None:
    """For statements sent past SQLAlchemy (the query planner talks to asyncpg directly)."""
    counter = _current.get()
    if counter is not None:
        counter.add()


def _on_execute(*_: Any) -> None:
    count_statement()


def count_statements(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "before_cursor_execute", _on_execute)
