"""A fresh database, migrated by the project's own migrations, holding a deterministic catalogue."""

from datetime import UTC, datetime

import asyncpg

from api.db.migrations import upgrade_to_head
from api.db.urls import parse_database_url
from bench.workloads import Catalogue
from tests.postgres import create_database, drop_database

COUNTRIES = (
    "Nigeria",
    "Japan",
    "Brazil",
    "France",
    "India",
    "Canada",
    "Kenya",
    "Norway",
)
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

# Author g: "Author 0001", a country from the list in turn, created a minute after the last.
INSERT_AUTHORS = """
INSERT INTO authors (id, name, bio, country, created_at)
SELECT g,
       'Author ' || lpad(g::text, $2, '0'),
       NULL,
       ($3::text[])[1 + (g - 1) % cardinality($3::text[])],
       $4::timestamptz + (g - 1) * interval '1 minute'
FROM generate_series(1, $1) AS g
"""

# Book n of author a: id (a - 1) * books + n, "Book 0001-01", a second after the one before.
INSERT_BOOKS = """
INSERT INTO books (id, title, author_id, created_at)
SELECT (a - 1) * $2 + n,
       'Book ' || lpad(a::text, $3, '0') || '-' || lpad(n::text, $4, '0'),
       a,
       $5::timestamptz + (a - 1) * interval '1 minute' + n * interval '1 second'
FROM generate_series(1, $1) AS a CROSS JOIN generate_series(1, $2) AS n
"""

# Explicit ids bypass the serial sequences: move them past the rows, as if they had been used.
RESET_SEQUENCES = (
    """
SELECT setval(pg_get_serial_sequence('authors', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL)
FROM authors
""",
    """
SELECT setval(pg_get_serial_sequence('books', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL)
FROM books
""",
)


async def create(admin: str) -> str:
    """A new, empty database on the server at `admin`; returns its URL."""
    return await create_database(admin, prefix="catalog_bench")


def migrate(url: str) -> None:
    """Blocking: the project's migrations, to head (call outside an event loop)."""
    upgrade_to_head(parse_database_url(url, pooled=False), quiet=True)


async def load(url: str, catalogue: Catalogue) -> str:
    """Write the catalogue in two INSERT ... SELECT statements; returns the server's version."""
    width = max(4, len(str(catalogue.authors)))
    book_width = max(2, len(str(catalogue.books_per_author)))
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute(
                INSERT_AUTHORS, catalogue.authors, width, list(COUNTRIES), EPOCH
            )
            await connection.execute(
                INSERT_BOOKS,
                catalogue.authors,
                catalogue.books_per_author,
                width,
                book_width,
                EPOCH,
            )
            for statement in RESET_SEQUENCES:
                await connection.execute(statement)
        await connection.execute("ANALYZE authors, books")
        version: str = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return version


async def drop(admin: str, url: str) -> None:
    await drop_database(admin, url)
