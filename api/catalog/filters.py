"""Building blocks for WHERE clauses shared by authors and books."""

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute


def contains(column: InstrumentedAttribute[Any], fragment: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; `%` and `_` in the fragment match themselves."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")
