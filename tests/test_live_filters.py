"""A subscription's filter means what the list's filter means: `Filter.matches` (Python, on
the change log's values) agrees with `Filter.clause` (SQL) on every filter and edge value."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.catalog.describe import Filter, InvalidFilter
from api.catalog.entities import ENTITIES

# Stored values, as the log keeps them (JSON): text with case, accents, wildcards and
# spaces; numbers at the edges; nulls.
TEXTS = ["Le Guin", "le guin", "LE GUIN ", "Ursula", "50% off_", "a\\b", "Éluard", None]
NUMBERS = [999, 1000, 1990, 2100, None]
GIVEN_TEXT = ["le guin", "LE GUIN", "uin", "% o", "0% OFF_", "a\\b", "éLUARD", "zzz"]
GIVEN_NUMBERS = [1000, 1990, 2100]


def cases(condition: Filter) -> list[tuple[Any, Any]]:
    if condition.field.kind.name == "TEXT":
        return [(given, stored) for given in GIVEN_TEXT for stored in TEXTS]
    return [(given, stored) for given in GIVEN_NUMBERS for stored in NUMBERS]


FILTERS = [
    pytest.param(condition, id=f"{entity.name}.{condition.name}")
    for entity in ENTITIES.values()
    for condition in entity.filters
    if condition.field.kind.name in ("TEXT", "INT")
]


@pytest.mark.parametrize("condition", FILTERS)
async def test_python_and_sql_agree(condition: Filter, engine: AsyncEngine) -> None:
    checked = 0
    async with engine.connect() as connection:
        for given, stored in cases(condition):
            try:
                value = condition.value(given)
            except InvalidFilter:
                continue
            expected = await sql_says(connection, condition, value, stored)
            assert condition.matches(value, stored) is expected, (given, stored)
            checked += 1
    assert checked > 10


async def sql_says(connection: AsyncConnection, condition: Filter, value: Any, stored: Any) -> bool:
    """Whether the list's SQL condition holds for a row whose column holds `stored`: the
    clause, as the list sends it, over a one-row table of the same name and column."""
    column = condition.field.column.property.columns[0]
    kind = column.type.compile(dialect=connection.dialect)
    clause = condition.clause(value).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    row = f"SELECT CAST(:stored AS {kind}) AS {column.name}"
    result = await connection.execute(
        text(f"SELECT coalesce(bool_or({clause}), false) FROM ({row}) AS {column.table.name}"),
        {"stored": stored},
    )
    return bool(result.scalar())
