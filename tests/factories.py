"""Test data written straight to the database, for tests about reading it."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.relay import to_base64

from api.db.models import Author, Book

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def author_gid(database_id: int) -> str:
    return to_base64("Author", database_id)


def book_gid(database_id: int) -> str:
    return to_base64("Book", database_id)


async def insert_authors(
    engine: AsyncEngine,
    count: int,
    *,
    books_each: int = 0,
    countries: Sequence[str | None] = ("Nigeria", "Japan", None),
    name_prefix: str = "Author",
) -> list[int]:
    """`count` authors named "<prefix> 000…", created a minute apart, each with books."""
    async with engine.begin() as connection:
        author_ids = list(
            await connection.scalars(
                insert(Author).returning(Author.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"{name_prefix} {index:03d}",
                        "bio": f"Bio {index}",
                        "country": countries[index % len(countries)] if countries else None,
                        "created_at": EPOCH + timedelta(minutes=index),
                    }
                    for index in range(count)
                ],
            )
        )
        if books_each:
            await connection.execute(
                insert(Book),
                [
                    {
                        "author_id": author_id,
                        "title": f"Book {index:03d}-{number:02d}",
                        "created_at": EPOCH + timedelta(minutes=index, seconds=number),
                    }
                    for index, author_id in enumerate(author_ids)
                    for number in range(books_each)
                ],
            )
    return author_ids
