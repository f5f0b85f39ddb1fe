"""The query planner's own behaviour: statements sent, fallbacks, planned writes, large bodies.

The generated differential test (both paths, identical bytes) is in test_planner_differential.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.models import Author, Book
from api.db.statements import statement_counter
from api.pipeline import consistency as endpoint  # where the door runs serve_planned
from tests.conftest import make_settings, serving
from tests.factories import author_gid
from tests.graphql_client import GraphQLClient

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

AUTHOR_ROWS: list[dict[str, Any]] = [
    {"name": "Wisława Szymborska", "country": "Poland", "bio": "Poet.\nNobel 1996", "at": 0},
    {"name": "Same Name", "country": "Japan", "bio": None, "at": 1},
    {"name": "Same Name", "country": "japan", "bio": "tie on name", "at": 1},
    {"name": 'O"Brien \\ back', "country": None, "bio": "quote and backslash", "at": 2},
    {"name": "محمود درويش", "country": "Palestine", "bio": None, "at": 3.5},
    {"name": "東野圭吾", "country": "Japan", "bio": "emoji 📚", "at": 4.000123},
    {"name": "100% _wild_", "country": "Nigeria", "bio": None, "at": 5},
    {"name": "Zed", "country": "Nigeria", "bio": "", "at": 6},
]
TITLES = ["Ash", "Birch", "Cedar 50%", "Dune_2", "Elm", "Fir", "Ash"]


async def populate(engine: AsyncEngine) -> tuple[list[int], list[int]]:
    async with engine.begin() as connection:
        author_ids = list(
            await connection.scalars(
                insert(Author).returning(Author.id, sort_by_parameter_order=True),
                [
                    {
                        "name": row["name"],
                        "country": row["country"],
                        "bio": row["bio"],
                        "created_at": BASE + timedelta(seconds=row["at"]),
                    }
                    for row in AUTHOR_ROWS
                ],
            )
        )
        book_values = [
            {
                "author_id": author_id,
                "title": TITLES[(index + number) % len(TITLES)],
                "created_at": BASE + timedelta(seconds=number, microseconds=index * 7),
            }
            for index, author_id in enumerate(author_ids)
            for number in range(index % 5)
        ]
        book_ids = list(
            await connection.scalars(
                insert(Book).returning(Book.id, sort_by_parameter_order=True), book_values
            )
        )
    return author_ids, book_ids


async def test_a_page_of_a_hundred_authors_with_books_is_one_statement(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    from tests.factories import insert_authors

    await insert_authors(engine, 120, books_each=3)
    query = """
    query Page($first: Int!) {
      authors(first: $first) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node {
          id name
          books(first: 10) { totalCount edges { node { title author { name } } } }
        } }
      }
    }
    """
    for first in (1, 100):
        await client.execute(query, {"first": first})
        with statement_counter() as counter:
            data = await client.execute(query, {"first": first})
        assert counter.count == 1
        assert len(data["authors"]["edges"]) == first
        assert data["authors"]["totalCount"] == 120


async def test_unplannable_documents_fall_back_to_the_resolvers(client: GraphQLClient) -> None:
    """Directives and introspection are not planned; they still answer correctly."""
    query = "query($skip: Boolean!) { authors { totalCount @skip(if: $skip) } __typename }"
    for _ in range(2):
        data = await client.execute(query, {"skip": True})
        assert data == {"authors": {}, "__typename": "Query"}
    schema = await client.execute("{ __schema { queryType { name } } }")
    assert schema["__schema"]["queryType"]["name"] == "Query"


CREATE_BOOK = """
mutation Create($input: CreateBookInput!) {
  createBook(input: $input) {
    __typename
    book { __typename title databaseId createdAt author { name } }
    userErrors { field message code }
  }
}
"""


async def book_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Book)) or 0)


def without_row_identity(payload: dict[str, Any]) -> dict[str, Any]:
    """A created book's id and time differ between two inserts; the rest must not."""
    book = payload["createBook"]["book"]
    if book is not None:
        book = {k: v for k, v in book.items() if k not in ("databaseId", "createdAt")}
    return {**payload["createBook"], "book": book}


async def test_create_book_is_planned_and_answers_as_the_resolvers_do(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[bool] = []
    original = endpoint.serve_planned  # type: ignore[attr-defined]

    async def spy(*args: Any) -> Any:
        response = await original(*args)
        served.append(response is not None)
        return response

    monkeypatch.setattr(endpoint, "serve_planned", spy)
    author_ids, _ = await populate(engine)
    cases = [
        {"authorId": author_gid(author_ids[1]), "title": "  Planned Title  "},
        {"authorId": author_gid(author_ids[0]), "title": ""},  # BLANK: the resolvers answer
        {"authorId": author_gid(999_999), "title": "Nobody's"},  # NOT_FOUND: nothing written
        {"authorId": "garbage", "title": "X"},  # INVALID_ID
    ]
    for variables in ({"input": case} for case in cases):
        expected = (await resolver_client.post(CREATE_BOOK, variables)).json()
        await client.post(CREATE_BOOK, variables)  # learned the first time
        before = await book_count(engine)
        served.clear()
        with statement_counter() as counter:
            actual = (await client.post(CREATE_BOOK, variables)).json()
        assert without_row_identity(actual["data"]) == without_row_identity(expected["data"])
        written = await book_count(engine) - before
        if expected["data"]["createBook"]["userErrors"]:
            assert written == 0
            # Refused before it is planned, or planned and found nothing to write to: either
            # way the resolvers answer it.
            assert True not in served, "refused input is answered by the resolvers"
        else:
            assert served == [True], "a valid createBook is planned"
            assert (written, counter.count) == (1, 1), "a valid createBook is one statement"
            async with engine.connect() as connection:
                title = await connection.scalar(
                    select(Book.title).where(
                        Book.id == actual["data"]["createBook"]["book"]["databaseId"]
                    )
                )
            assert title == "Planned Title"


async def test_planned_writes_still_need_the_token(database_url: str, engine: AsyncEngine) -> None:
    author_ids, _ = await populate(engine)
    token = "tok-" + "a" * 28
    variables = {"input": {"authorId": author_gid(author_ids[0]), "title": "Guarded"}}
    async with serving(make_settings(database_url, api_token=token)) as app:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):  # learned, then planned
            response = await app.http.post(
                "/graphql", json={"query": CREATE_BOOK, "variables": variables}, headers=headers
            )
            assert response.json()["data"]["createBook"]["book"]["title"] == "Guarded"
        before = await book_count(engine)
        refused = (await app.post(CREATE_BOOK, variables)).json()
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await book_count(engine) == before


async def test_a_large_planned_response_arrives_whole(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Bodies over 64 KiB are sent in chunks; the client must still get all of it."""
    from api.pipeline.respond import CHUNK
    from tests.factories import insert_authors

    await insert_authors(engine, 100, books_each=10)
    query = """
    query Big {
      authors(first: 100) {
        edges { node { id name bio books(first: 10) { edges { cursor node { id title } } } } }
      }
    }
    """
    resolved = await client.post(query)
    planned = await client.post(query)
    assert len(planned.content) > CHUNK  # at least two chunks
    assert planned.json() == resolved.json()


CREATE_AUTHOR = """
mutation Create($input: CreateAuthorInput!) {
  createAuthor(input: $input) {
    author { __typename name bio country books { totalCount } }
    userErrors { field message code }
  }
}
"""
AUTHOR_INPUTS = [
    {"name": "  Octavia E. Butler ", "country": "United States", "bio": "Line one\nline two"},
    {"name": "Only A Name"},
    {"name": "Nulls", "bio": None, "country": None},
    {"name": "   "},  # BLANK
    {"name": "x" * 500},  # TOO_LONG
    {"name": "abc\u202egpj.exe"},  # a bidirectional override
    {"name": "Blank bio", "bio": "  "},  # stored as null
]


async def test_create_author_answers_as_the_resolvers_do(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """createAuthor is planned too (with a page of books, which a planned write cannot see)."""
    for given in AUTHOR_INPUTS:
        variables = {"input": given}
        expected = (await resolver_client.post(CREATE_AUTHOR, variables)).json()
        before = await author_count(engine)
        actual = (await client.post(CREATE_AUTHOR, variables)).json()
        assert actual == expected, given
        written = await author_count(engine) - before
        assert written == (0 if expected["data"]["createAuthor"]["userErrors"] else 1)

    query = CREATE_AUTHOR.replace("books { totalCount }", "")
    with statement_counter() as counter:
        created = (await client.post(query, {"input": {"name": "Planned"}})).json()
    assert created["data"]["createAuthor"]["author"]["name"] == "Planned"
    assert counter.count == 1  # planned: one statement


async def author_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Author)) or 0)
