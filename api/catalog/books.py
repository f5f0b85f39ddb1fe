"""Reading and writing books."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.entities import BOOK
from api.catalog.filters import contains
from api.catalog.pagination import Page, Window, fetch_pages
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.rows import AnyRow
from api.db.models import Book

BOOK_COLUMNS = (Book.id, Book.title, Book.author_id, Book.created_at)

BOOK_ORDERINGS = BOOK.orderings


@dataclass(frozen=True)
class BookFilter:
    author_id: int | None = None
    title_contains: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses = []
        if self.author_id is not None:
            clauses.append(Book.author_id == self.author_id)
        if self.title_contains:
            clauses.append(contains(Book.title, self.title_contains))
        return clauses


AUTHOR_NOT_FOUND = Problem(("authorId",), "no author has this id", ProblemCode.NOT_FOUND)


async def books_page(session: AsyncSession, *, window: Window, where: BookFilter) -> Page:
    pages = await fetch_pages(session, columns=BOOK_COLUMNS, window=window, filters=where.clauses())
    return pages[0]


async def books_pages_by_author(
    session: AsyncSession, *, window: Window, author_ids: Sequence[int]
) -> dict[int, Page]:
    return await fetch_pages(
        session, columns=BOOK_COLUMNS, window=window, parent=Book.author_id, parent_ids=author_ids
    )


async def count_books(session: AsyncSession, *, where: BookFilter) -> int:
    total = await session.scalar(select(func.count()).select_from(Book).where(*where.clauses()))
    return total or 0


async def count_books_by_author(
    session: AsyncSession, *, author_ids: Sequence[int]
) -> dict[int, int]:
    rows = await session.execute(
        select(Book.author_id, func.count())
        .where(Book.author_id.in_(author_ids))
        .group_by(Book.author_id)
    )
    counts = dict.fromkeys(author_ids, 0)
    counts.update(dict(rows.all()))
    return counts


async def books_by_id(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, AnyRow]:
    rows = await session.execute(select(*BOOK_COLUMNS).where(Book.id.in_(ids)))
    return {row.id: row for row in rows}


async def create_books(
    session: AsyncSession, *, values: Sequence[dict[str, Any]]
) -> Sequence[AnyRow]:
    """Insert books (`author_id`, `title`); an author that does not exist is NOT_FOUND.

    The foreign key is the existence check, so the common case costs one statement; a
    violation aborts the caller's transaction, which is rolled back as a whole.
    """
    statement = insert(Book).returning(*BOOK_COLUMNS, sort_by_parameter_order=True)
    try:
        return (await session.execute(statement, list(values))).all()
    except IntegrityError:
        raise InvalidInput([AUTHOR_NOT_FOUND]) from None


async def update_book(session: AsyncSession, *, book_id: int, title: str) -> AnyRow | None:
    result = await session.execute(
        update(Book).where(Book.id == book_id).values(title=title).returning(*BOOK_COLUMNS)
    )
    return result.one_or_none()


async def delete_book(session: AsyncSession, *, book_id: int) -> AnyRow | None:
    result = await session.execute(delete(Book).where(Book.id == book_id).returning(*BOOK_COLUMNS))
    return result.one_or_none()
