"""JSON text built by Postgres, byte for byte what the ordinary path's encoder writes.

Objects and arrays are concatenated from compact pieces (no spaces, keys in the order the
document asks for them), so a planned answer equals the ordinary path's answer exactly.
Scalars go through `to_json`, which escapes as our encoder does. Only fixed punctuation and
GraphQL names (checked here) enter the SQL text; values are columns or bind parameters.
"""

import re
from collections.abc import Sequence
from functools import reduce
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, case, cast, func, literal_column

from api.catalog.describe import Kind

GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")


def sql_text(value: str) -> ColumnElement[str]:
    """A string constant of our own making (punctuation and GraphQL names)."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def concat(parts: Sequence[ColumnElement[Any]]) -> ColumnElement[str]:
    return reduce(lambda left, right: left.concat(right), parts)


def name(value: str) -> str:
    if not GRAPHQL_NAME.match(value):  # validated already; checked again as it enters SQL
        raise ValueError(value)
    return value


def json_object(pairs: Sequence[tuple[str, ColumnElement[str]]]) -> ColumnElement[str]:
    parts: list[ColumnElement[str]] = []
    for index, (key, value) in enumerate(pairs):
        parts.append(sql_text(("{" if index == 0 else ",") + f'"{name(key)}":'))
        parts.append(value)
    parts.append(sql_text("}" if pairs else "{}"))
    return concat(parts)


def json_string_constant(value: str) -> ColumnElement[str]:
    return sql_text(f'"{name(value)}"')


def or_null(value: ColumnElement[Any]) -> ColumnElement[str]:
    return func.coalesce(value, sql_text("null"))


def json_scalar(value: ColumnElement[Any]) -> ColumnElement[str]:
    """`to_json` text of a value, `null` for NULL."""
    return or_null(cast(func.to_json(value), Text))


def timestamp_text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """The text Python's `datetime.isoformat()` gives for a UTC timestamptz."""
    utc = func.timezone("UTC", column)
    whole = func.to_char(utc, sql_text('YYYY-MM-DD"T"HH24:MI:SS'))
    microseconds = cast(func.extract("microseconds", column), Integer) % 1_000_000
    fraction = case((microseconds == 0, sql_text("")), else_=func.to_char(utc, sql_text(".US")))
    return concat([whole, fraction, sql_text("+00:00")])


def field_json(kind: Kind, value: ColumnElement[Any]) -> ColumnElement[str]:
    if kind is Kind.TIMESTAMP:
        return or_null(concat([sql_text('"'), timestamp_text(value), sql_text('"')]))
    if kind is Kind.INT:
        return or_null(cast(value, Text))
    return json_scalar(value)


def json_array(elements: ColumnElement[Any]) -> ColumnElement[str]:
    """`[a,b,…]` from a text array of JSON elements (NULL: empty)."""
    joined = func.coalesce(func.array_to_string(elements, ","), sql_text(""))
    return concat([sql_text("["), joined, sql_text("]")])
