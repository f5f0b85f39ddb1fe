"""Writing a whole catalogue in one transaction, for seed scripts."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog import records
from api.catalog.entities import AUTHOR, AUTHOR_NAME, BOOK
from api.catalog.rows import AnyRow

# Serialises concurrent idempotent seeds, so two runs cannot both decide an author is new.
SEED_LOCK_KEY = 0x7365_6564  # "seed"

BOOKS = AUTHOR.relation("books")
assert BOOKS is not None
AUTHOR_OF_BOOK = BOOKS.remote.key
"""The column by which a book refers to its author."""


@dataclass(frozen=True)
class NewAuthor:
    values: Mapping[str, Any]
    """Column values of the author."""
    books: Sequence[Mapping[str, Any]]
    """Column values of each of their books, without the reference to the author."""


@dataclass(frozen=True)
class SeededAuthor:
    author: AnyRow
    books: Sequence[AnyRow]


async def seed_catalog(
    session: AsyncSession, *, authors: Sequence[NewAuthor], skip_existing: bool
) -> list[SeededAuthor]:
    """Insert authors and their books with a fixed number of statements.

    With `skip_existing`, an author whose exact name is already in the catalogue is left
    alone (with the books given for them), which makes re-running a seed script harmless.
    """
    if skip_existing:
        await session.execute(select(func.pg_advisory_xact_lock(SEED_LOCK_KEY)))
        names = {a.values[AUTHOR_NAME.key] for a in authors}
        existing = set(
            await session.scalars(select(AUTHOR_NAME.column).where(AUTHOR_NAME.column.in_(names)))
        )
        authors = [a for a in authors if a.values[AUTHOR_NAME.key] not in existing]
    if not authors:
        return []
    rows = await records.create_rows(session, AUTHOR, values=[a.values for a in authors])
    book_values = [
        {**book, AUTHOR_OF_BOOK: row.id}
        for row, new in zip(rows, authors, strict=True)
        for book in new.books
    ]
    books = await records.create_rows(session, BOOK, values=book_values) if book_values else []
    by_author: dict[int, list[AnyRow]] = {row.id: [] for row in rows}
    for book in books:
        by_author[getattr(book, AUTHOR_OF_BOOK)].append(book)
    return [SeededAuthor(author=row, books=by_author[row.id]) for row in rows]
