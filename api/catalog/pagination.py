"""Keyset pagination: page windows and the SQL that fetches a page.

Every page is fetched with one statement, whether it is one top-level page or one page per
parent (an author's books). Orderings and their cursors are described in
`api.catalog.describe`; the query planner builds its pages from the same pieces.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Integer, false, func, literal, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api.catalog.describe import InvalidPageRequest, Ordering
from api.catalog.rows import AnyRow

CursorKey = tuple[Any, int]


class Window(NamedTuple):
    """Validated pagination arguments: which way, how many, between which cursors.

    A named tuple: one is made per connection per request, and it is a dict key in loaders.
    """

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
        bounds.append(ordering.beyond(*window.after, forward=True))
    if window.before is not None:
        bounds.append(ordering.beyond(*window.before, forward=False))
    page = (
        select(*columns, ordering.sort_key().label("sort_key_"))
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
            .where(*scope, ordering.not_beyond(*came_from, forward=window.forward))
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
