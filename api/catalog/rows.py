"""The row type data functions return: any SQLAlchemy Row, whatever its columns."""

from typing import Any, TypeAlias

from sqlalchemy import Row

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
