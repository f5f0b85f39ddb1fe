"""Building blocks for WHERE clauses shared by authors and books."""

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute


def ilike_pattern(fragment: str) -> str:
    """An ILIKE pattern (escape character `\\`) matching `fragment` anywhere, literally."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: InstrumentedAttribute[Any], fragment: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; `%` and `_` in the fragment match themselves."""
    return column.ilike(ilike_pattern(fragment), escape="\\")
