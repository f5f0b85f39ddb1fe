"""Reading and writing authors."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.entities import AUTHOR
from api.catalog.filters import contains
from api.catalog.pagination import Page, Window, fetch_pages
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.rows import AnyRow
from api.db.models import Author, Book

AUTHOR_COLUMNS = (Author.id, Author.name, Author.bio, Author.country, Author.created_at)

AUTHOR_ORDERINGS = AUTHOR.orderings


@dataclass(frozen=True)
class AuthorFilter:
    country: str | None = None
    name_contains: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses = []
        if self.country is not None:
            clauses.append(func.lower(Author.country) == self.country.strip().lower())
        if self.name_contains:
            clauses.append(contains(Author.name, self.name_contains))
        return clauses


async def authors_page(session: AsyncSession, *, window: Window, where: AuthorFilter) -> Page:
    pages = await fetch_pages(
        session, columns=AUTHOR_COLUMNS, window=window, filters=where.clauses()
    )
    return pages[0]


async def count_authors(session: AsyncSession, *, where: AuthorFilter) -> int:
    total = await session.scalar(select(func.count()).select_from(Author).where(*where.clauses()))
    return total or 0


async def authors_by_id(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, AnyRow]:
    rows = await session.execute(select(*AUTHOR_COLUMNS).where(Author.id.in_(ids)))
    return {row.id: row for row in rows}


async def create_author(
    session: AsyncSession, *, name: str, bio: str | None, country: str | None
) -> AnyRow:
    result = await session.execute(
        insert(Author).values(name=name, bio=bio, country=country).returning(*AUTHOR_COLUMNS)
    )
    return result.one()


async def update_author(
    session: AsyncSession, *, author_id: int, changes: dict[str, Any]
) -> AnyRow | None:
    """Apply `changes` (column name to value); None when the author does not exist."""
    if not changes:
        return (await authors_by_id(session, ids=[author_id])).get(author_id)
    result = await session.execute(
        update(Author).where(Author.id == author_id).values(**changes).returning(*AUTHOR_COLUMNS)
    )
    return result.one_or_none()


async def delete_author(
    session: AsyncSession, *, author_id: int, with_books: bool
) -> tuple[AnyRow, list[int]] | None:
    """Delete an author (and their books when `with_books`); None when there is none.

    Without `with_books`, an author who has books is refused: the foreign key decides, so a
    book added concurrently cannot be orphaned or silently deleted.
    """
    deleted_books: list[int] = []
    if with_books:
        result = await session.scalars(
            delete(Book).where(Book.author_id == author_id).returning(Book.id)
        )
        deleted_books = sorted(result)
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    delete(Author).where(Author.id == author_id).returning(*AUTHOR_COLUMNS)
                )
            ).one_or_none()
    except IntegrityError:
        count = await session.scalar(select(func.count()).where(Book.author_id == author_id))
        raise InvalidInput(
            [
                Problem(
                    ("id",),
                    f"the author has {count} book(s); delete them first or pass withBooks: true",
                    ProblemCode.HAS_BOOKS,
                )
            ]
        ) from None
    return None if row is None else (row, deleted_books)
