"""Keyset pagination: opaque cursors, page windows and the SQL that fetches a page.

A cursor holds the sort key and id of a row, not an offset, so rows inserted before the
current page never shift what comes after it. Every page is fetched with one statement,
whether it is one top-level page or one page per parent (an author's books).
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    false,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api.catalog.rows import AnyRow

CursorKey = tuple[Any, int]


class InvalidPageRequest(ValueError):
    """Pagination arguments that cannot be served, with the reason for the client."""


@dataclass(frozen=True)
class KeyCodec:
    """How a sort key is written into a cursor, in Python and, identically, in SQL.

    `sql` renders a key column as the same text `encode` produces, so a cursor built by
    Postgres (the query planner's path) equals one built here.
    """

    encode: Callable[[Any], str]
    decode: Callable[[str], Any]
    sql: str


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


INT4_MAX = 2**31 - 1
MAX_TEXT_KEY = 1000


def _decode_id(text: str) -> int:
    """Ids are Postgres `integer`s: anything outside its range is not a cursor we issued."""
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > INT4_MAX:
        raise ValueError(text)
    return int(text)


def _decode_text(text: str) -> str:
    if "\x00" in text or len(text) > MAX_TEXT_KEY:
        raise ValueError(text)
    return text


def _decode_timestamp(text: str) -> datetime:
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 17:
        raise ValueError(text)
    return EPOCH + int(text) * MICROSECOND


INT_KEY = KeyCodec(encode=str, decode=_decode_id, sql="{}::text")
TEXT_KEY = KeyCodec(encode=str, decode=_decode_text, sql="{}::text")
TIMESTAMP_KEY = KeyCodec(
    encode=lambda value: str((value - EPOCH) // MICROSECOND),
    decode=_decode_timestamp,
    sql="((extract(epoch from {}) * 1000000)::bigint)::text",
)


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass(frozen=True, eq=False)
class Ordering:
    """A sort order: a key column, then the id to break ties, both in one direction.

    Compared by identity: each ordering is a module-level constant, and its columns are
    SQL expressions whose `==` builds SQL rather than comparing.
    """

    name: str
    key: InstrumentedAttribute[Any]
    id: InstrumentedAttribute[int]
    descending: bool
    codec: KeyCodec

    def order_by(self, *, reverse: bool = False) -> list[ColumnElement[Any]]:
        descending = self.descending != reverse
        return [c.desc() if descending else c.asc() for c in (self.key, self.id)]

    def beyond(self, cursor: CursorKey, *, forward: bool) -> ColumnElement[bool]:
        """Rows strictly after `cursor` in the direction of travel (`forward` = sort order).

        A row comparison, `(key, id) > (k, i)`, which Postgres turns into the start of an index
        range scan; the same condition spelled with OR is a filter, and a deep cursor would
        then walk the index from its first row. `~` negates it into `<=` (or `>=`), which is
        an index range too. Keys are NOT NULL, so the comparison is total.
        """
        key, row_id = cursor
        ascending = self.descending != forward
        row, at = tuple_(self.key, self.id), tuple_(key, row_id)
        return row > at if ascending else row < at

    def cursor_for(self, key: Any, row_id: int) -> str:
        """Opaque to clients: base64url of "ORDERING:ID:KEY" (the key last, as it may hold ':')."""
        return encode_cursor(f"{self.name}:{row_id}:{self.codec.encode(key)}")

    def parse_cursor(self, cursor: str, *, argument: str) -> CursorKey:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            text = base64.urlsafe_b64decode(padded.encode()).decode()
            name, row_id, key_text = text.split(":", 2)
            key = self.codec.decode(key_text)
            row = _decode_id(row_id)
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
            raise InvalidPageRequest(f"`{argument}` is not a valid cursor") from None
        if name != self.name:
            raise InvalidPageRequest(
                f"`{argument}` is a cursor for orderBy {name}, not {self.name}; "
                "use the cursors of the same ordering"
            )
        return key, row


def orderings(
    id_column: InstrumentedAttribute[int],
    keys: dict[str, tuple[InstrumentedAttribute[Any], KeyCodec]],
) -> dict[str, Ordering]:
    """Both directions of each sort key, named like the GraphQL enum (`NAME_ASC`, …)."""
    built = [
        Ordering(f"{name}_{direction}", column, id_column, direction == "DESC", codec)
        for name, (column, codec) in keys.items()
        for direction in ("ASC", "DESC")
    ]
    return {ordering.name: ordering for ordering in built}


@dataclass(frozen=True)
class Window:
    """Validated pagination arguments: which way, how many, between which cursors."""

    ordering: Ordering
    size: int
    forward: bool
    after: CursorKey | None = None
    before: CursorKey | None = None


def page_window(
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
    max_size: int,
) -> Window:
    if first is not None and last is not None:
        raise InvalidPageRequest("pass `first` or `last`, not both")
    for argument, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise InvalidPageRequest(f"`{argument}` must not be negative")
        if value is not None and value > max_size:
            raise InvalidPageRequest(
                f"`{argument}` is {value}; the largest page is {max_size} items"
            )
    forward = last is None and not (first is None and before is not None and after is None)
    size = first if first is not None else last if last is not None else min(default_size, max_size)
    return Window(
        ordering=ordering,
        size=size,
        forward=forward,
        after=ordering.parse_cursor(after, argument="after") if after is not None else None,
        before=ordering.parse_cursor(before, argument="before") if before is not None else None,
    )


@dataclass(frozen=True)
class Page:
    rows: Sequence[AnyRow]
    has_next: bool
    has_previous: bool


async def fetch_pages(
    session: AsyncSession,
    *,
    columns: Sequence[InstrumentedAttribute[Any]],
    window: Window,
    filters: Sequence[ColumnElement[bool]] = (),
    parent: InstrumentedAttribute[int] | None = None,
    parent_ids: Sequence[int] = (0,),
) -> dict[int, Page]:
    """One page per parent id (or a single page, keyed 0, when `parent` is None).

    Each page is a LATERAL subquery that walks the index in the direction of travel and
    stops one row past the page; a second flag says whether rows exist behind the cursor
    we came from. An empty page still yields its parent's row, so its flags survive.
    """
    ordering = window.ordering
    parents = (
        func.unnest(literal(list(parent_ids), ARRAY(Integer)))
        .table_valued("id")
        .render_derived(name="parent")
    )
    scope = [*filters]
    if parent is not None:
        scope.append(parent == parents.c.id)

    bounds = []
    if window.after is not None:
        bounds.append(ordering.beyond(window.after, forward=True))
    if window.before is not None:
        bounds.append(ordering.beyond(window.before, forward=False))
    page = (
        select(*columns, ordering.key.label("sort_key_"))
        .where(*scope, *bounds)
        .order_by(*ordering.order_by(reverse=not window.forward))
        .limit(window.size + 1)
        .lateral("page")
    )
    came_from = window.after if window.forward else window.before
    behind: ColumnElement[bool] = false()
    if came_from is not None:
        # The nearest row behind the cursor, found by walking the index back from it; EXISTS
        # would drop the ORDER BY, and then a sequential scan may look for it everywhere.
        nearest = (
            select(true())
            .where(*scope, ~ordering.beyond(came_from, forward=window.forward))
            .order_by(*ordering.order_by(reverse=window.forward))
            .limit(1)
        )
        behind = func.coalesce(nearest.scalar_subquery(), false())
    statement = (
        select(parents.c.id.label("parent_id_"), behind.label("behind_"), page)
        .select_from(parents.outerjoin(page, true()))
        .order_by(parents.c.id, page.c.sort_key_, page.c.id)
    )
    result = await session.execute(statement)
    grouped: dict[int, list[AnyRow]] = {parent_id: [] for parent_id in parent_ids}
    behind_flags: dict[int, bool] = {}
    for row in result:
        behind_flags[row.parent_id_] = row.behind_
        if row.id is not None:
            grouped[row.parent_id_].append(row)
    pages = {}
    for parent_id, rows in grouped.items():
        if ordering.descending:
            rows.reverse()
        more = len(rows) > window.size
        if window.forward:
            rows = rows[: window.size]
        else:
            rows = rows[len(rows) - window.size :] if more else rows
        flag = behind_flags.get(parent_id, False)
        pages[parent_id] = Page(
            rows=rows,
            has_next=more if window.forward else flag,
            has_previous=flag if window.forward else more,
        )
    return pages
