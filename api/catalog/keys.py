"""Sort keys in cursors: how each kind of key is written, read back, and rendered by SQL.

A cursor holds the sort key and id of a row, not an offset, so rows inserted before the
current page never shift what comes after it. It is base64url of "ORDERING:ID:KEY" (the key
last, as it may hold ':'); clients treat it as opaque.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, cast, extract

URLSAFE_ALPHABET = bytes.maketrans(b"-_", b"+/")
INT4_MAX = 2**31 - 1
"""Every id and integer column is a Postgres `integer`: the one limit on them."""
MAX_TEXT_KEY = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class InvalidCursor(ValueError):
    """Text that is not a cursor this service issued."""


@dataclass(frozen=True)
class KeyCodec:
    """How a sort key is written into a cursor, in Python and, identically, in SQL.

    `sql` renders a key expression as the same text `encode` produces, so a cursor built by
    Postgres (the query planner's path) equals one built here.
    """

    encode: Callable[[Any], str]
    decode: Callable[[str], Any]
    sql: Callable[[ColumnElement[Any]], ColumnElement[str]]


def decode_int(text: str) -> int:
    """Integers are Postgres `integer`s: anything outside its range is not a key we issued."""
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        raise InvalidCursor(text)
    value = int(text)
    if not -INT4_MAX - 1 <= value <= INT4_MAX:
        raise InvalidCursor(text)
    return value


def decode_row_id(text: str) -> int:
    """A cursor's row id: a positive `integer` (global ids are `api.catalog.ids.decode_id`)."""
    value = decode_int(text)
    if value <= 0 or text.startswith("-"):
        raise InvalidCursor(text)
    return value


def _decode_text(text: str) -> str:
    if "\x00" in text or len(text) > MAX_TEXT_KEY:
        raise InvalidCursor(text)
    return text


def _decode_timestamp(text: str) -> datetime:
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 17:
        raise InvalidCursor(text)
    return EPOCH + int(text) * MICROSECOND


def _as_text(expression: ColumnElement[Any]) -> ColumnElement[str]:
    return cast(expression, Text)


def _timestamp_sql(expression: ColumnElement[Any]) -> ColumnElement[str]:
    microseconds = cast(extract("epoch", expression) * 1_000_000, BigInteger)
    return cast(microseconds, Text)


INT_KEY = KeyCodec(encode=str, decode=decode_int, sql=_as_text)
TEXT_KEY = KeyCodec(encode=str, decode=_decode_text, sql=_as_text)
TIMESTAMP_KEY = KeyCodec(
    encode=lambda value: str((value - EPOCH) // MICROSECOND),
    decode=_decode_timestamp,
    sql=_timestamp_sql,
)


def encode_cursor(ordering: str, row_id: int, key_text: str) -> str:
    text = f"{ordering}:{row_id}:{key_text}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int, str]:
    """(ordering name, row id, key text) of a cursor; `InvalidCursor` for anything else."""
    try:  # base64.urlsafe_b64decode's steps, without its wrappers: this runs per request
        padded = cursor + "=" * (-len(cursor) % 4)
        text = binascii.a2b_base64(padded.encode().translate(URLSAFE_ALPHABET)).decode()
        name, row_id, key_text = text.split(":", 2)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(cursor) from None
    return name, decode_row_id(row_id), key_text
