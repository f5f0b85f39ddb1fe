"""The API behind a real transaction-mode PgBouncer, as on Neon's pooled endpoint.

Transaction pooling hands each transaction whichever server connection is free, so nothing
may outlive a transaction on the server: asyncpg's cached, named prepared statements do.
`DATABASE_POOLED` (or a Neon `-pooler` host) turns them off; these tests run every query and
mutation through PgBouncer that way, then under concurrent load, and show what goes wrong
without it.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.db.engine import connect_args_for
from tests import pgbouncer as pgbouncer_support
from tests.conftest import make_settings
from tests.factories import author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient
from tests.pgbouncer import (
    PgBouncer,
    config_text,
    require_pgbouncer,
    running_pgbouncer,
    upstream_of,
)
from tests.postgres import with_database

# `make test-fast` leaves these out: starts PgBouncer in front of its own database.
pytestmark = pytest.mark.slow

POOL_SIZE = 3  # server connections per database: far fewer than the app's 15 clients
CONCURRENT_REQUESTS = 100
NEGATIVE_CONTROL_ROUNDS = 10
PREPARED_STATEMENT_ERRORS = (
    "prepared statement",  # "… does not exist" / "… already exists"
    "InvalidSQLStatementNameError",
    "DuplicatePreparedStatementError",
)

NESTED_AUTHORS = """
query NestedAuthors($first: Int!, $after: String, $filter: AuthorFilter, $order: AuthorOrderBy!) {
  authors(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id databaseId name country
        books(first: 2) {
          totalCount
          edges { node { id title author { id name } } }
        }
      }
    }
  }
}
"""
NESTED_BOOKS = """
query NestedBooks($first: Int!, $filter: BookFilter, $order: BookOrderBy!) {
  books(first: $first, filter: $filter, orderBy: $order) {
    totalCount
    edges { node { id databaseId title author { id name books { totalCount } } } }
  }
}
"""
ONE_AUTHOR = """
query OneAuthor($id: ID!) {
  author(id: $id) { name books(last: 1) { totalCount edges { node { title } } } }
}
"""
ONE_BOOK = "query OneBook($id: ID!) { book(id: $id) { title author { name } } }"
NODES = """
query Nodes($a: ID!, $b: ID!) {
  a: node(id: $a) { id ... on Author { name } }
  b: node(id: $b) { id ... on Book { title author { name } } }
}
"""
USER_ERRORS = "userErrors { field code }"
CREATE_AUTHOR = f"""
mutation CreateAuthor($input: CreateAuthorInput!) {{
  createAuthor(input: $input) {{ author {{ id databaseId name bio country }} {USER_ERRORS} }}
}}
"""
UPDATE_AUTHOR = f"""
mutation UpdateAuthor($input: UpdateAuthorInput!) {{
  updateAuthor(input: $input) {{ author {{ id name bio country }} {USER_ERRORS} }}
}}
"""
DELETE_AUTHOR = f"""
mutation DeleteAuthor($input: DeleteAuthorInput!) {{
  deleteAuthor(input: $input) {{ author {{ name }} deletedBookIds {USER_ERRORS} }}
}}
"""
CREATE_BOOK = f"""
mutation CreateBook($input: CreateBookInput!) {{
  createBook(input: $input) {{
    book {{ id databaseId title author {{ databaseId books {{ totalCount }} }} }}
    {USER_ERRORS}
  }}
}}
"""
UPDATE_BOOK = f"""
mutation UpdateBook($input: UpdateBookInput!) {{
  updateBook(input: $input) {{ book {{ id title author {{ name }} }} {USER_ERRORS} }}
}}
"""
DELETE_BOOK = f"""
mutation DeleteBook($input: DeleteBookInput!) {{
  deleteBook(input: $input) {{ book {{ title }} {USER_ERRORS} }}
}}
"""
SEED = f"""
mutation Seed($input: SeedCatalogInput!) {{
  seedCatalog(input: $input) {{
    authors {{ databaseId name books {{ totalCount edges {{ node {{ title }} }} }} }}
    {USER_ERRORS}
  }}
}}
"""


@pytest.fixture(scope="session")
async def pgbouncer(postgres_admin_url: str) -> AsyncIterator[PgBouncer]:
    async with running_pgbouncer(postgres_admin_url, pool_size=POOL_SIZE) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pooled_url(pgbouncer: PgBouncer, database_url: str) -> str:
    """The test database, reached through PgBouncer."""
    return pgbouncer.url_for(database_url)


@asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[GraphQLClient]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http)


@pytest.fixture(scope="session")
async def pooled_client(pooled_url: str) -> AsyncIterator[GraphQLClient]:
    """The app as deployed on Neon: through the transaction pooler, with DATABASE_POOLED."""
    async with serve(pooled_url, database_pooled=True) as client:
        yield client


async def payload_of(
    client: GraphQLClient, mutation: str, document: str, input: dict[str, Any]
) -> dict[str, Any]:
    data = await client.execute(document, {"input": input})
    payload: dict[str, Any] = data[mutation]
    return payload


async def fetch_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), params)]


# --- the PgBouncer these tests start ---------------------------------------------------------


def test_without_pgbouncer_tests_skip_locally_but_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pgbouncer_support, "find_pgbouncer", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install pgbouncer"):
        require_pgbouncer()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pgbouncer is not installed"):
        require_pgbouncer()


@pytest.mark.parametrize(
    ("admin_url", "upstream"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test", ("127.0.0.1", 5432)),
        ("postgresql://postgres@db.internal/test", ("db.internal", 5432)),
        ("postgresql://postgres:@/postgres?host=/tmp/pg/socket", ("/tmp/pg/socket", 5432)),
        ("postgresql://postgres:@/postgres?host=/run/pg&port=5433", ("/run/pg", 5433)),
    ],
)
def test_pgbouncer_forwards_to_the_tests_postgres(
    admin_url: str, upstream: tuple[str, int]
) -> None:
    assert upstream_of(admin_url) == upstream
    text = config_text(port=6543, upstream=upstream, pool_size=3, auth_file=Path("/a/users"))
    assert f"* = host={upstream[0]} port={upstream[1]}\n" in text
    for line in ("pool_mode = transaction", "default_pool_size = 3", "auth_type = trust"):
        assert f"\n{line}\n" in text


# --- detection ------------------------------------------------------------------------------


def test_database_pooled_turns_off_reusable_prepared_statements(pooled_url: str) -> None:
    settings = make_settings(pooled_url, database_pooled=True)
    assert settings.database.pooled
    args = connect_args_for(settings.database)
    assert args["statement_cache_size"] == 0
    assert args["prepared_statement_cache_size"] == 0
    names = {args["prepared_statement_name_func"]() for _ in range(3)}
    assert len(names) == 3
    # Without the flag a local PgBouncer is not recognised: it must be configured.
    assert not make_settings(pooled_url).database.pooled


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alex:secret@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/catalog"
        "?sslmode=require&channel_binding=require",
        "postgres://alex:secret@ep-x-1-pooler.eu-central-1.aws.neon.tech:5432/neondb",
    ],
)
def test_neon_pooler_host_is_pooled_without_database_pooled(url: str) -> None:
    settings = make_settings(url)
    assert settings.database_pooled is None
    assert settings.database.pooled
    args = connect_args_for(settings.database)
    assert (args["statement_cache_size"], args["prepared_statement_cache_size"]) == (0, 0)
    assert args["prepared_statement_name_func"]() != args["prepared_statement_name_func"]()
    # Migrations go to the direct endpoint, never through the pooler.
    direct = settings.migration_database
    assert not direct.pooled
    assert direct.url.host is not None
    assert "-pooler" not in direct.url.host
    assert direct.url.host.endswith(".neon.tech")
    # DATABASE_POOLED=false still wins over the detection.
    assert not make_settings(url, database_pooled=False).database.pooled


def test_neon_direct_host_is_not_pooled() -> None:
    url = "postgresql://alex:secret@ep-cool-darkness-123456.us-east-2.aws.neon.tech/catalog"
    assert not make_settings(url).database.pooled
    assert "statement_cache_size" not in connect_args_for(make_settings(url).database)


# --- every query and mutation through the pooler ----------------------------------------------


async def test_readyz_through_the_pooler(pooled_client: GraphQLClient) -> None:
    response = await pooled_client.http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_every_query_through_the_pooler(
    pooled_client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 5, books_each=3)
    (first_book,) = (row[0] for row in await fetch_rows(engine, "SELECT min(id) FROM books"))

    page = await pooled_client.execute(NESTED_AUTHORS, {"first": 2, "order": "NAME_DESC"})
    authors = page["authors"]
    assert authors["totalCount"] == 5
    assert authors["pageInfo"]["hasNextPage"] is True
    assert [edge["node"]["name"] for edge in authors["edges"]] == ["Author 004", "Author 003"]
    for edge in authors["edges"]:
        books = edge["node"]["books"]
        assert books["totalCount"] == 3
        assert len(books["edges"]) == 2
        assert {e["node"]["author"]["id"] for e in books["edges"]} == {edge["node"]["id"]}

    rest = await pooled_client.execute(
        NESTED_AUTHORS,
        {"first": 10, "after": authors["pageInfo"]["endCursor"], "order": "NAME_DESC"},
    )
    assert [e["node"]["name"] for e in rest["authors"]["edges"]] == [
        "Author 002",
        "Author 001",
        "Author 000",
    ]
    assert rest["authors"]["pageInfo"]["hasNextPage"] is False

    filtered = await pooled_client.execute(
        NESTED_AUTHORS,
        {"first": 10, "filter": {"country": "japan", "nameContains": "author"}, "order": "ID_ASC"},
    )
    assert filtered["authors"]["totalCount"] == 2
    assert {e["node"]["country"] for e in filtered["authors"]["edges"]} == {"Japan"}

    books = await pooled_client.execute(
        NESTED_BOOKS,
        {
            "first": 10,
            "filter": {"authorId": author_gid(author_ids[1]), "titleContains": "001-0"},
            "order": "TITLE_DESC",
        },
    )
    assert books["books"]["totalCount"] == 3
    assert [e["node"]["title"] for e in books["books"]["edges"]] == [
        "Book 001-02",
        "Book 001-01",
        "Book 001-00",
    ]
    assert {e["node"]["author"]["name"] for e in books["books"]["edges"]} == {"Author 001"}
    assert {e["node"]["author"]["books"]["totalCount"] for e in books["books"]["edges"]} == {3}

    one = await pooled_client.execute(ONE_AUTHOR, {"id": author_gid(author_ids[2])})
    assert one["author"] == {
        "name": "Author 002",
        "books": {"totalCount": 3, "edges": [{"node": {"title": "Book 002-02"}}]},
    }
    book = await pooled_client.execute(ONE_BOOK, {"id": book_gid(first_book)})
    assert book["book"] == {"title": "Book 000-00", "author": {"name": "Author 000"}}
    missing = await pooled_client.execute(ONE_BOOK, {"id": book_gid(first_book + 999)})
    assert missing["book"] is None

    nodes = await pooled_client.execute(
        NODES, {"a": author_gid(author_ids[4]), "b": book_gid(first_book)}
    )
    assert nodes["a"] == {"id": author_gid(author_ids[4]), "name": "Author 004"}
    assert nodes["b"] == {
        "id": book_gid(first_book),
        "title": "Book 000-00",
        "author": {"name": "Author 000"},
    }


async def test_every_mutation_through_the_pooler(
    pooled_client: GraphQLClient, engine: AsyncEngine
) -> None:
    created = await payload_of(
        pooled_client,
        "createAuthor",
        CREATE_AUTHOR,
        {"name": " Ursula K. Le Guin ", "bio": "Wrote Earthsea.", "country": "USA"},
    )
    assert created["userErrors"] == []
    author = created["author"]
    author_id = author["databaseId"]
    assert await fetch_rows(
        engine, "SELECT name, bio, country FROM authors WHERE id = :id", id=author_id
    ) == [("Ursula K. Le Guin", "Wrote Earthsea.", "USA")]

    updated = await payload_of(
        pooled_client, "updateAuthor", UPDATE_AUTHOR, {"id": author["id"], "bio": None}
    )
    assert updated == {
        "author": {"id": author["id"], "name": "Ursula K. Le Guin", "bio": None, "country": "USA"},
        "userErrors": [],
    }
    assert await fetch_rows(engine, "SELECT bio FROM authors WHERE id = :id", id=author_id) == [
        (None,)
    ]

    titles = ["A Wizard of Earthsea", "The Tombs of Atuan", "The Farthest Shore"]
    book_ids = []
    for count, title in enumerate(titles, start=1):
        book = await payload_of(
            pooled_client, "createBook", CREATE_BOOK, {"authorId": author["id"], "title": title}
        )
        assert book["userErrors"] == []
        assert book["book"]["author"] == {"databaseId": author_id, "books": {"totalCount": count}}
        book_ids.append(book["book"]["databaseId"])
    refused = await payload_of(
        pooled_client, "createBook", CREATE_BOOK, {"authorId": author_gid(999_999), "title": "X"}
    )
    assert refused == {"book": None, "userErrors": [{"field": ["authorId"], "code": "NOT_FOUND"}]}

    renamed = await payload_of(
        pooled_client, "updateBook", UPDATE_BOOK, {"id": book_gid(book_ids[2]), "title": "Tehanu"}
    )
    assert renamed["book"]["title"] == "Tehanu"
    assert renamed["book"]["author"] == {"name": "Ursula K. Le Guin"}

    deleted_book = await payload_of(
        pooled_client, "deleteBook", DELETE_BOOK, {"id": book_gid(book_ids[1])}
    )
    assert deleted_book == {"book": {"title": "The Tombs of Atuan"}, "userErrors": []}
    assert await fetch_rows(
        engine, "SELECT id, title FROM books WHERE author_id = :id ORDER BY id", id=author_id
    ) == [(book_ids[0], "A Wizard of Earthsea"), (book_ids[2], "Tehanu")]

    kept = await payload_of(pooled_client, "deleteAuthor", DELETE_AUTHOR, {"id": author["id"]})
    assert kept["author"] is None
    assert kept["userErrors"] == [{"field": ["id"], "code": "HAS_BOOKS"}]
    assert await fetch_rows(
        engine, "SELECT count(*) FROM authors WHERE id = :id", id=author_id
    ) == [(1,)]

    gone = await payload_of(
        pooled_client, "deleteAuthor", DELETE_AUTHOR, {"id": author["id"], "withBooks": True}
    )
    assert gone["userErrors"] == []
    assert gone["author"] == {"name": "Ursula K. Le Guin"}
    assert sorted(gone["deletedBookIds"]) == sorted([book_gid(book_ids[0]), book_gid(book_ids[2])])
    assert await fetch_rows(engine, "SELECT count(*) FROM authors") == [(0,)]
    assert await fetch_rows(engine, "SELECT count(*) FROM books") == [(0,)]


async def test_seed_catalog_through_the_pooler(
    pooled_client: GraphQLClient, engine: AsyncEngine
) -> None:
    entries = [
        {"name": "Chinua Achebe", "country": "Nigeria", "books": [{"title": "Arrow of God"}]},
        {"name": "Kōbō Abe", "books": [{"title": "The Woman in the Dunes"}, {"title": "Kangaroo"}]},
    ]
    seeded = await payload_of(pooled_client, "seedCatalog", SEED, {"authors": entries})
    assert seeded["userErrors"] == []
    assert [(a["name"], a["books"]["totalCount"]) for a in seeded["authors"]] == [
        ("Chinua Achebe", 1),
        ("Kōbō Abe", 2),
    ]

    # Re-running with skipExistingAuthors (an advisory lock held for one transaction) adds
    # only the new author.
    again = await payload_of(
        pooled_client,
        "seedCatalog",
        SEED,
        {"authors": [*entries, {"name": "Yoko Tawada"}], "skipExistingAuthors": True},
    )
    assert again["userErrors"] == []
    assert [a["name"] for a in again["authors"]] == ["Yoko Tawada"]
    before = await fetch_rows(engine, "SELECT id, name FROM authors ORDER BY id")
    assert [name for _, name in before] == ["Chinua Achebe", "Kōbō Abe", "Yoko Tawada"]

    # All or nothing: one bad title refuses the whole call.
    refused = await payload_of(
        pooled_client,
        "seedCatalog",
        SEED,
        {
            "authors": [
                {"name": "Would Be Written", "books": [{"title": "Fine"}]},
                {"name": "Broken", "books": [{"title": "   "}]},
            ]
        },
    )
    assert refused == {
        "authors": [],
        "userErrors": [{"field": ["authors", "1", "books", "0", "title"], "code": "BLANK"}],
    }
    assert await fetch_rows(engine, "SELECT id, name FROM authors ORDER BY id") == before
    assert await fetch_rows(engine, "SELECT count(*) FROM books") == [(3,)]

    # And the catalogue reads back the same through the pooler.
    after = await pooled_client.execute(NESTED_AUTHORS, {"first": 5, "order": "ID_ASC"})
    assert after["authors"]["totalCount"] == 3


async def test_concurrent_idempotent_seeds_write_once_through_the_pooler(
    pooled_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """skipExistingAuthors serialises on a transaction-scoped advisory lock, which (unlike a
    session lock) holds under transaction pooling: eight identical seeds write one catalogue."""
    entries = [{"name": f"Seeded {index}", "books": [{"title": "Only"}]} for index in range(3)]
    payloads = await asyncio.gather(
        *(
            payload_of(
                pooled_client,
                "seedCatalog",
                SEED,
                {"authors": entries, "skipExistingAuthors": True},
            )
            for _ in range(8)
        )
    )
    assert all(payload["userErrors"] == [] for payload in payloads)
    written = sorted(author["name"] for payload in payloads for author in payload["authors"])
    assert written == ["Seeded 0", "Seeded 1", "Seeded 2"]
    assert await fetch_rows(engine, "SELECT name FROM authors ORDER BY name") == [
        ("Seeded 0",),
        ("Seeded 1",),
        ("Seeded 2",),
    ]
    assert await fetch_rows(engine, "SELECT count(*) FROM books") == [(3,)]


# --- under concurrent load ------------------------------------------------------------------


def mixed_load(author_ids: list[int], tag: str) -> list[tuple[str, dict[str, Any]]]:
    """Half createBook mutations, half nested queries of every kind, interleaved."""
    requests: list[tuple[str, dict[str, Any]]] = []
    for index in range(CONCURRENT_REQUESTS):
        author = author_gid(author_ids[index % len(author_ids)])
        if index % 2 == 0:
            title = f"{tag} {index:03d}"
            requests.append((CREATE_BOOK, {"input": {"authorId": author, "title": title}}))
        elif index % 6 == 1:
            requests.append((NESTED_AUTHORS, {"first": 5, "order": "NAME_ASC"}))
        elif index % 6 == 3:
            requests.append((NESTED_BOOKS, {"first": 10, "order": "ID_DESC"}))
        else:
            requests.append((ONE_AUTHOR, {"id": author}))
    return requests


async def send_all(
    client: GraphQLClient, requests: list[tuple[str, dict[str, Any]]]
) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post(query, variables) for query, variables in requests))


async def test_concurrent_mixed_load_through_the_pooler(
    pooled_client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 6, books_each=2)
    tag = f"load-{uuid.uuid4().hex[:8]}"
    requests = mixed_load(author_ids, tag)

    responses = await send_all(pooled_client, requests)

    failures = [r.text for r in responses if r.status_code != 200 or "errors" in r.json()]
    assert failures == [], failures[:3]
    acknowledged: dict[int, tuple[str, int]] = {}
    for (_, variables), response in zip(requests, responses, strict=True):
        data = response.json()["data"]
        if "createBook" in data:
            payload = data["createBook"]
            assert payload["userErrors"] == []
            book = payload["book"]
            assert book["title"] == variables["input"]["title"]
            assert author_gid(book["author"]["databaseId"]) == variables["input"]["authorId"]
            assert book["author"]["books"]["totalCount"] >= 3  # its two, plus this one
            acknowledged[book["databaseId"]] = (book["title"], book["author"]["databaseId"])
        elif "authors" in data:
            assert data["authors"]["totalCount"] == 6
            for edge in data["authors"]["edges"]:
                assert 2 <= edge["node"]["books"]["totalCount"] <= 2 + CONCURRENT_REQUESTS // 2
        elif "books" in data:
            assert 12 <= data["books"]["totalCount"] <= 12 + CONCURRENT_REQUESTS // 2
            assert len(data["books"]["edges"]) == 10
        else:
            assert data["author"]["name"].startswith("Author ")
    assert len(acknowledged) == CONCURRENT_REQUESTS // 2

    # Read back over a direct connection: every acknowledged write is there, nothing else.
    stored = await fetch_rows(
        engine, "SELECT id, title, author_id FROM books WHERE title LIKE :tag", tag=f"{tag} %"
    )
    assert {book_id: (title, author) for book_id, title, author in stored} == acknowledged
    assert await fetch_rows(engine, "SELECT count(*) FROM books") == [
        (12 + CONCURRENT_REQUESTS // 2,)
    ]


# --- why DATABASE_POOLED is needed ------------------------------------------------------------


async def test_without_pooled_mode_the_pooler_breaks_prepared_statements(
    pooled_url: str, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Negative control: the same load, through the same PgBouncer, with asyncpg's statement
    caches left on, fails, and the failures are prepared statements that the pooler's
    connection swapping broke."""
    author_ids = await insert_authors(engine, 6, books_each=2)
    caplog.set_level(logging.WARNING, logger="api.errors")
    failures: list[dict[str, Any]] = []
    async with serve(pooled_url, database_pooled=False) as client:
        for attempt in range(NEGATIVE_CONTROL_ROUNDS):
            responses = await send_all(client, mixed_load(author_ids, f"unpooled-{attempt}"))
            for response in responses:
                if response.status_code == 200:
                    failures.extend(response.json().get("errors", []))
            if failures:
                break

    # It fails at once in practice (dozens of the hundred requests); ten rounds are margin.
    assert failures, "asyncpg's prepared statements survived transaction pooling"
    codes = {error["extensions"]["code"] for error in failures}
    assert codes <= {"INTERNAL_SERVER_ERROR", "DATABASE_UNAVAILABLE"}, failures
    causes = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    logged = [
        record
        for record in caplog.records
        if record.exc_info and any(m in repr(record.exc_info[1]) for m in PREPARED_STATEMENT_ERRORS)
    ]
    assert logged, causes


async def test_asyncpg_statement_cache_breaks_behind_a_transaction_pooler(
    pgbouncer: PgBouncer, postgres_admin_url: str
) -> None:
    """The mechanism, deterministically, with two plain asyncpg connections (statement cache
    on, as asyncpg defaults to): named prepared statements live on a server connection, and
    PgBouncer gives each transaction whichever server connection is free."""
    assert pgbouncer.pool_size >= 2
    # The maintenance database: nothing else uses its PgBouncer pool. PgBouncer reuses the
    # most recently released server connection, so consecutive transactions share one.
    dsn = pgbouncer.url_for(with_database(postgres_admin_url, "postgres"))
    first = await asyncpg.connect(dsn)
    second = await asyncpg.connect(dsn)
    try:
        # Consecutive, both on the same server connection, A: `first` prepares a statement
        # by name, as another replica might, and runs one it prepares and caches itself.
        replica_statement = await first.prepare("SELECT 1", name="replica_statement")
        server_a = await first.fetchval("SELECT pg_backend_pid()")
        transaction = second.transaction()
        await transaction.start()
        try:
            # `second` is in a transaction, so it keeps A until it ends …
            assert await second.fetchval("SELECT pg_backend_pid()") == server_a
            # … and `first` is given a new server connection, B, without its statement.
            with pytest.raises(asyncpg.InvalidSQLStatementNameError, match="does not exist"):
                await first.fetchval("SELECT pg_backend_pid()")
            server_b = await first.fetchval("SELECT pg_backend_pid() AS uncached")
            assert server_b != server_a
            # On A a second replica, counting names from 1 too, collides with the first.
            with pytest.raises(asyncpg.DuplicatePreparedStatementError, match="already exists"):
                await second.prepare("SELECT 2", name="replica_statement")
        finally:
            await transaction.rollback()
        # (Kept referenced until here: asyncpg deallocates statements it collects.)
        assert replica_statement.get_query() == "SELECT 1"
    finally:
        await first.close()
        await second.close()
