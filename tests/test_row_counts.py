"""Unfiltered totalCount comes from counters the writing transactions keep exact.

Every test compares three numbers: what the API answers, what `row_counts` holds, and a real
`count(*)`. They must agree after each kind of write, including writes that fail or roll back.
"""

import asyncio

import asyncpg
from alembic.script import Script, ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from api.catalog.counts import exact_row_count
from api.db.migrations import alembic_config
from api.db.models import Author, Book
from api.graphql.seed_mutation import MAX_SEED_BOOKS
from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient
from tests.postgres import create_database, drop_database
from tests.test_concurrency import CREATE_BOOK, DELETE_AUTHOR, SEED, payload_of
from tests.test_migrations import connect, rows, target_for
from tests.test_online_ddl import leave_invalid_index, valid_index

TOTALS = "{ authors { totalCount } books { totalCount } }"
CREATE_AUTHOR = (
    "mutation Create($input: CreateAuthorInput!) { createAuthor(input: $input) "
    "{ author { id } userErrors { code } } }"
)
DELETE_BOOK = (
    "mutation Delete($input: DeleteBookInput!) { deleteBook(input: $input) "
    "{ book { id } userErrors { code } } }"
)
WRITERS = 8
WRITES_EACH = 25


async def counted(engine: AsyncEngine) -> tuple[int, int]:
    """(authors, books) as the counters say."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(exact_row_count(Author), exact_row_count(Book)))
        ).one()
        return int(row[0]), int(row[1])


async def real(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        authors = await connection.scalar(text("SELECT count(*) FROM authors"))
        books = await connection.scalar(text("SELECT count(*) FROM books"))
        return int(authors or 0), int(books or 0)


async def answered(client: GraphQLClient) -> tuple[int, int]:
    data = await client.execute(TOTALS)
    return data["authors"]["totalCount"], data["books"]["totalCount"]


async def assert_exact(
    engine: AsyncEngine, expected: tuple[int, int], *clients: GraphQLClient
) -> None:
    assert await real(engine) == expected
    assert await counted(engine) == expected
    for client in clients:
        assert await answered(client) == expected


async def test_totals_follow_inserts_and_deletes(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    await assert_exact(engine, (0, 0), client, resolver_client)
    author_ids = await insert_authors(engine, 3, books_each=4)
    await assert_exact(engine, (3, 12), client, resolver_client)

    created = await payload_of(client, CREATE_AUTHOR, "createAuthor", {"name": "New"})
    book = await payload_of(
        client, CREATE_BOOK, "createBook", {"authorId": created["author"]["id"], "title": "T"}
    )
    assert book["userErrors"] == []
    await assert_exact(engine, (4, 13), client, resolver_client)

    deleted = await payload_of(client, DELETE_BOOK, "deleteBook", {"id": book["book"]["id"]})
    assert deleted["userErrors"] == []
    await assert_exact(engine, (4, 12), client, resolver_client)

    gone = await payload_of(
        client, DELETE_AUTHOR, "deleteAuthor", {"id": author_gid(author_ids[0]), "withBooks": True}
    )
    assert len(gone["deletedBookIds"]) == 4
    await assert_exact(engine, (3, 8), client, resolver_client)


async def test_refused_and_rolled_back_writes_count_nothing(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=2)
    refused = await payload_of(
        client, DELETE_AUTHOR, "deleteAuthor", {"id": author_gid(author_id), "withBooks": False}
    )
    assert [error["code"] for error in refused["userErrors"]] == ["HAS_BOOKS"]
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO authors (name) VALUES ('Rolled back')"))
        await connection.execute(
            text("INSERT INTO books (title, author_id) VALUES ('Rolled back', :a)"),
            {"a": author_id},
        )
        assert await connection.scalar(select(exact_row_count(Book))) == 3  # its own writes
        await connection.rollback()
    await assert_exact(engine, (1, 2), client)


async def test_a_seed_counts_every_row(client: GraphQLClient, engine: AsyncEngine) -> None:
    books_each = MAX_SEED_BOOKS // 100
    authors = [
        {"name": f"Seeded {n}", "books": [{"title": f"B{n}-{b}"} for b in range(books_each)]}
        for n in range(100)
    ]
    payload = await payload_of(client, SEED, "seedCatalog", {"authors": authors})
    assert payload["userErrors"] == []
    await assert_exact(engine, (100, 100 * books_each), client)


ROW_COUNT_UPDATES = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'row_counts'"


async def test_a_statement_of_many_rows_updates_its_counter_once(engine: AsyncEngine) -> None:
    """Statement-level triggers: a thousand-row INSERT costs one counter update, not 1000.

    Counted within one transaction, where the backend's statistics cannot be flushed.
    """
    (author_id,) = await insert_authors(engine, 1)
    async with engine.connect() as connection:
        before = await connection.scalar(text(ROW_COUNT_UPDATES))
        await connection.execute(
            text(
                "INSERT INTO books (title, author_id) "
                "SELECT 'Bulk ' || n, :a FROM generate_series(1, 1000) AS n"
            ),
            {"a": author_id},
        )
        await connection.execute(text("DELETE FROM books WHERE title LIKE 'Bulk 1%'"))
        after = await connection.scalar(text(ROW_COUNT_UPDATES))
        await connection.commit()
    assert after - before == 2  # one per statement
    assert await counted(engine) == (1, 1000 - 112)  # gone: 1, 10-19, 100-199 and 1000


async def test_truncate_resets_the_totals(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 5, books_each=2)
    await assert_exact(engine, (5, 10), client)
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE books, authors RESTART IDENTITY CASCADE"))
    await assert_exact(engine, (0, 0), client)
    await insert_authors(engine, 1, books_each=1)
    await assert_exact(engine, (1, 1), client)


async def test_concurrent_writers_on_many_connections_lose_no_count(
    client: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    """Writers on their own connections (so on several counter slots) insert and delete at once."""
    (author_id,) = await insert_authors(engine, 1)
    dsn = database_url

    async def writer(number: int) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            for write in range(WRITES_EACH):
                async with connection.transaction():
                    book = await connection.fetchval(
                        "INSERT INTO books (title, author_id) VALUES ($1, $2) RETURNING id",
                        f"w{number}-{write}",
                        author_id,
                    )
                    if write % 5 == 0:  # and some deletes, in the same transaction
                        await connection.execute("DELETE FROM books WHERE id = $1", book)
        finally:
            await connection.close()

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    deleted_each = len(range(0, WRITES_EACH, 5))
    await assert_exact(engine, (1, WRITERS * (WRITES_EACH - deleted_each)), client)
    async with engine.connect() as connection:
        slots_used = await connection.scalar(
            text("SELECT count(*) FROM row_counts WHERE books <> 0")
        )
    assert slots_used is not None
    assert slots_used > 1, "every writer used the same counter row"


async def test_both_paths_read_the_counters_not_the_table(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Proof that no count(*) runs: a counter changed behind the API's back is what it answers."""
    await insert_authors(engine, 2, books_each=1)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE row_counts SET books = books + 40 WHERE slot = 0"))
    try:
        assert await answered(client) == (2, 42)
        assert await answered(resolver_client) == (2, 42)
        for path in (client, resolver_client):  # a filter is counted in the table
            filtered = await path.execute(
                '{ books(filter: { titleContains: "Book" }) { totalCount } }'
            )
            assert filtered["books"]["totalCount"] == 2
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE row_counts SET books = books - 40 WHERE slot = 0")
            )


def counts_revision() -> Script:
    """The revision that installs the row counts (found by what it defines, not by its id)."""
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        if hasattr(script.module, "COUNTED_TABLES"):
            return script
    raise AssertionError("no revision installs the row counts")


async def test_rerunning_the_revision_converges(postgres_admin_url: str) -> None:
    """Run again after an interruption that left one of its indexes INVALID: the index is
    rebuilt, the valid ones kept, and no row is counted twice."""
    url = await create_database(postgres_admin_url, prefix="catalog_counts_rerun")
    config = alembic_config(target_for(url), quiet=True)
    revision = counts_revision()
    try:
        await asyncio.to_thread(command.upgrade, config, revision.revision)
        async with connect(url) as connection:
            await connection.execute(text("INSERT INTO authors (name) VALUES ('A'), ('B')"))
            await connection.execute(text("DROP INDEX ix_authors_name_id"))
            await connection.commit()
        await leave_invalid_index(
            url,
            "ix_authors_name_id",
            "CREATE INDEX CONCURRENTLY ix_authors_name_id ON authors (name)",
        )
        kept = await valid_index(url, "ix_books_title_id")
        assert revision.down_revision is not None
        await asyncio.to_thread(command.stamp, config, revision.down_revision)
        await asyncio.to_thread(command.upgrade, config, revision.revision)

        rebuilt = await valid_index(url, "ix_authors_name_id")
        assert rebuilt.definition.endswith("(name, id)")
        assert (await valid_index(url, "ix_books_title_id")).oid == kept.oid
        assert await rows(url, "SELECT sum(authors) FROM row_counts") == [(2,)]
    finally:
        await drop_database(postgres_admin_url, url)
