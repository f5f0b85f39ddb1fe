"""The SQL a request really sends, with its parameters, for tests that EXPLAIN it.

The ordinary path talks through SQLAlchemy engines: a listener on every engine's
`before_cursor_execute` sees each statement as the driver gets it (asyncpg's `$n` style and
the parameter tuple), so a test can replay exactly what the API sent.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class SentStatement:
    sql: str
    params: tuple[Any, ...]


@contextmanager
def statements_sent() -> Iterator[list[SentStatement]]:
    """Every statement any engine in this process sends while the block runs, in order."""
    sent: list[SentStatement] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append(SentStatement(statement, tuple(parameters or ())))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)
