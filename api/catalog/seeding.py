"""Writing a whole catalogue in one transaction, for seed scripts."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.authors import AUTHOR_COLUMNS
from api.catalog.books import create_books
from api.catalog.rows import AnyRow
from api.db.models import Author

# Serialises concurrent idempotent seeds, so two runs cannot both decide an author is new.
SEED_LOCK_KEY = 0x7365_6564  # "seed"


@dataclass(frozen=True)
class NewAuthor:
    name: str
    bio: str | None
    country: str | None
    book_titles: Sequence[str]


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
        existing = set(
            await session.scalars(
                select(Author.name).where(Author.name.in_({a.name for a in authors}))
            )
        )
        authors = [a for a in authors if a.name not in existing]
    if not authors:
        return []
    statement = insert(Author).returning(*AUTHOR_COLUMNS, sort_by_parameter_order=True)
    author_rows = (
        await session.execute(
            statement, [{"name": a.name, "bio": a.bio, "country": a.country} for a in authors]
        )
    ).all()
    book_values = [
        {"author_id": row.id, "title": title}
        for row, new in zip(author_rows, authors, strict=True)
        for title in new.book_titles
    ]
    book_rows = await create_books(session, values=book_values) if book_values else []
    by_author: dict[int, list[AnyRow]] = {row.id: [] for row in author_rows}
    for book in book_rows:
        by_author[book.author_id].append(book)
    return [SeededAuthor(author=row, books=by_author[row.id]) for row in author_rows]
