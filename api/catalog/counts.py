"""Exact row counts of whole tables, without scanning them.

`count(*)` over ten million books reads ten million rows. The revision that built the indexes
also installed statement-level triggers that keep `row_counts` exact in the same transactions
that insert, delete or truncate: summing its few rows is the count as of the reader's
snapshot, so a rolled-back insert never shows and a committed one always does.
"""

from sqlalchemy import BigInteger, ColumnElement, Table, func, select

from api.db.models import Base, RowCount


def exact_row_count(table: Table | type[Base]) -> ColumnElement[int]:
    """A scalar subquery: how many rows `table` has (a KeyError for a table nobody counts)."""
    name = table.__tablename__ if isinstance(table, type) else table.name
    counted = RowCount.__table__.c[name]
    return select(func.coalesce(func.sum(counted), 0).cast(BigInteger)).scalar_subquery()
