"""The N+1 guarantee: how many SQL statements a query costs does not grow with its page size."""

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.db.models import Author, Book
from api.db.statements import statement_counter
from tests.factories import author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient

AUTHORS = 100
BOOKS_EACH = 5
MOST_STATEMENTS = 6

AUTHORS_WITH_BOOKS = """
query($first: Int!) {
  authors(first: $first) {
    totalCount
    edges { node {
      name
      books(first: 10) {
        totalCount
        edges { node { title author { name } } }
      }
    } }
  }
}
"""

BOOKS_WITH_AUTHORS = """
query($first: Int!) {
  books(first: $first) {
    totalCount
    edges { node {
      title
      author { name books(first: 3) { edges { node { title } } } }
    } }
  }
}
"""


WARM_UP = "{ authors(first: 1) { totalCount } }"


@dataclass(frozen=True)
class Cost:
    """Statements sent for a query text the server has not seen, then for the same text again.

    The first request is answered the ordinary way (resolvers and DataLoaders); a repeat may
    be answered by the query planner, which the first request taught.
    """

    first: int
    repeat: int


async def cost(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> tuple[Cost, dict[str, Any]]:
    """What the query cost both times, and its data (the same both times)."""
    await client.execute(WARM_UP)  # a connection in the pool: connecting is not the query's cost
    fresh = f"{query}\n# {uuid4().hex}"
    counts, answers = [], []
    for _ in range(2):
        with statement_counter() as counter:
            answers.append(await client.execute(fresh, variables))
        assert counter.count > 0, "the counter saw none of the statements the query sent"
        counts.append(counter.count)
    assert answers[1] == answers[0]
    return Cost(*counts), answers[0]


async def test_authors_with_nested_books_cost_the_same_for_one_or_a_hundred(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, AUTHORS, books_each=BOOKS_EACH)

    one, one_data = await cost(client, AUTHORS_WITH_BOOKS, {"first": 1})
    many, many_data = await cost(client, AUTHORS_WITH_BOOKS, {"first": AUTHORS})

    for data, size in ((one_data, 1), (many_data, AUTHORS)):
        edges = data["authors"]["edges"]
        assert (data["authors"]["totalCount"], len(edges)) == (AUTHORS, size)
        for edge in edges:
            author = edge["node"]
            books = author["books"]
            assert books["totalCount"] == len(books["edges"]) == BOOKS_EACH
            assert {book["node"]["author"]["name"] for book in books["edges"]} == {author["name"]}
    assert one == many
    assert max(many.first, many.repeat) <= MOST_STATEMENTS


async def test_books_with_nested_authors_cost_the_same_for_one_or_a_hundred(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, AUTHORS, books_each=BOOKS_EACH)
    async with engine.connect() as connection:
        author_of = dict(
            (await connection.execute(select(Book.title, Author.name).join(Author))).all()
        )

    one, one_data = await cost(client, BOOKS_WITH_AUTHORS, {"first": 1})
    many, many_data = await cost(client, BOOKS_WITH_AUTHORS, {"first": 100})

    for data, size in ((one_data, 1), (many_data, 100)):
        edges = data["books"]["edges"]
        assert (data["books"]["totalCount"], len(edges)) == (AUTHORS * BOOKS_EACH, size)
        for edge in edges:
            book = edge["node"]
            assert book["author"]["name"] == author_of[book["title"]]
            titles = [shelved["node"]["title"] for shelved in book["author"]["books"]["edges"]]
            assert len(titles) == 3
            assert {author_of[title] for title in titles} == {book["author"]["name"]}
    assert len({edge["node"]["author"]["name"] for edge in many_data["books"]["edges"]}) > 1
    assert one == many
    assert max(many.first, many.repeat) <= MOST_STATEMENTS


async def test_lookups_by_id_in_one_query_are_batched(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 6, books_each=1)
    async with engine.connect() as connection:
        book_ids = list(await connection.scalars(select(Book.id).order_by(Book.id)))
    single = """
    query($a: ID!, $b: ID!) {
      a: author(id: $a) { name }
      b: book(id: $b) { title }
    }
    """
    several = """
    query($a1: ID!, $a2: ID!, $n1: ID!, $n2: ID!, $b1: ID!, $n3: ID!) {
      a1: author(id: $a1) { databaseId }
      a2: author(id: $a2) { databaseId }
      n1: node(id: $n1) { ... on Author { databaseId } }
      n2: node(id: $n2) { ... on Author { databaseId } }
      b1: book(id: $b1) { databaseId }
      n3: node(id: $n3) { ... on Book { databaseId } }
    }
    """
    wanted = {
        "a1": author_ids[0],
        "a2": author_ids[1],
        "n1": author_ids[2],
        "n2": author_ids[3],
        "b1": book_ids[0],
        "n3": book_ids[1],
    }
    variables = {
        alias: (book_gid if alias in {"b1", "n3"} else author_gid)(key)
        for alias, key in wanted.items()
    }

    one_each, _ = await cost(
        client, single, {"a": author_gid(author_ids[0]), "b": book_gid(book_ids[0])}
    )
    batched, data = await cost(client, several, variables)

    assert {alias: node["databaseId"] for alias, node in data.items()} == wanted
    assert batched == one_each
    assert one_each.first <= 2  # a statement per table


async def test_author_and_node_lookups_of_one_author_share_a_statement(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 3)
    one_lookup = "query($a: ID!) { author(id: $a) { name } }"
    both = """
    query($a: ID!, $n: ID!) {
      author(id: $a) { name }
      node(id: $n) { ... on Author { name } }
    }
    """

    single, _ = await cost(client, one_lookup, {"a": author_gid(author_ids[0])})
    paired, data = await cost(
        client, both, {"a": author_gid(author_ids[0]), "n": author_gid(author_ids[2])}
    )

    assert (data["author"]["name"], data["node"]["name"]) == ("Author 000", "Author 002")
    assert single == paired
    assert paired.first == 1


async def test_nested_counters_each_count_every_statement(engine: AsyncEngine) -> None:
    """The app counts each request; a test's counter around the request must still count."""
    with statement_counter() as outer:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            before = outer.count
            with statement_counter() as inner:
                await connection.execute(text("SELECT 2"))
            after = outer.count

    assert before >= 1
    assert inner.count == 1
    assert after == before + inner.count


@pytest.mark.parametrize(
    ("model", "relationship"), [(Author, "books"), (Book, "author")], ids=["Author", "Book"]
)
async def test_relationships_refuse_to_lazy_load(
    engine: AsyncEngine, model: type[Author] | type[Book], relationship: str
) -> None:
    await insert_authors(engine, 1, books_each=2)

    async with AsyncSession(engine) as session:
        row = await session.scalar(select(model).limit(1))
        assert row is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            getattr(row, relationship)
