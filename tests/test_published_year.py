"""`Book.publishedYear`: written, refused out of range, filtered and ordered, on both paths.

The field was added by describing it once (api/catalog/entities.py), in the model and in one
migration; these tests show every derived piece follows, the planner included.
"""

from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.models import Book
from tests.factories import author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient

PATHS = ["client", "resolver_client"]
CREATE = """
mutation($input: CreateBookInput!) {
  createBook(input: $input) { book { title publishedYear } userErrors { field code } }
}
"""
UPDATE = """
mutation($input: UpdateBookInput!) {
  updateBook(input: $input) { book { title publishedYear } userErrors { field code } }
}
"""
SEED = """
mutation($input: SeedCatalogInput!) {
  seedCatalog(input: $input) { authors { name } userErrors { field code } }
}
"""


@pytest.fixture(params=PATHS)
def either(request: pytest.FixtureRequest) -> GraphQLClient:
    """The planner's app and the resolvers' app: every test runs on both."""
    client: GraphQLClient = request.getfixturevalue(request.param)
    return client


async def years(engine: AsyncEngine) -> list[int | None]:
    async with engine.connect() as connection:
        return list(await connection.scalars(select(Book.published_year).order_by(Book.id)))


@pytest.mark.parametrize("year", [1000, 1969, 2100, None])
async def test_a_year_in_range_is_stored(
    either: GraphQLClient, engine: AsyncEngine, year: int | None
) -> None:
    (author,) = await insert_authors(engine, 1)
    given = {"authorId": author_gid(author), "title": "Dated", "publishedYear": year}
    for _ in range(3):  # the planner's first, second (then kept) and repeated request
        payload = (await either.execute(CREATE, {"input": given}))["createBook"]
        assert payload == {"book": {"title": "Dated", "publishedYear": year}, "userErrors": []}
    assert await years(engine) == [year, year, year]


@pytest.mark.parametrize("year", [999, 2101, -1, 2**31 - 1])
async def test_a_year_out_of_range_is_refused_and_nothing_written(
    either: GraphQLClient, engine: AsyncEngine, year: int
) -> None:
    (author,) = await insert_authors(engine, 1)
    given = {"authorId": author_gid(author), "title": "Too early", "publishedYear": year}
    for _ in range(2):
        payload = (await either.execute(CREATE, {"input": given}))["createBook"]
        assert payload == {
            "book": None,
            "userErrors": [{"field": ["publishedYear"], "code": "OUT_OF_RANGE"}],
        }
    seeded = await either.execute(
        SEED,
        {"input": {"authors": [{"name": "N", "books": [{"title": "T", "publishedYear": year}]}]}},
    )
    assert seeded["seedCatalog"]["userErrors"] == [
        {"field": ["authors", "0", "books", "0", "publishedYear"], "code": "OUT_OF_RANGE"}
    ]
    assert await years(engine) == []


async def test_update_sets_keeps_and_clears_the_year(
    either: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 1, books_each=1)
    book = book_gid(1)

    async def change(**fields: Any) -> dict[str, Any]:
        data = await either.execute(UPDATE, {"input": {"id": book, **fields}})
        payload: dict[str, Any] = data["updateBook"]
        return payload

    assert (await change(publishedYear=1984))["book"]["publishedYear"] == 1984
    assert (await change(title="Renamed"))["book"] == {"title": "Renamed", "publishedYear": 1984}
    assert (await change(publishedYear=None))["book"]["publishedYear"] is None
    refused = await change(publishedYear=3000)
    assert refused["userErrors"] == [{"field": ["publishedYear"], "code": "OUT_OF_RANGE"}]
    assert await years(engine) == [None]


async def with_years(engine: AsyncEngine, values: list[int | None]) -> None:
    await insert_authors(engine, 1, books_each=len(values))
    async with engine.begin() as connection:
        for book_id, year in enumerate(values, start=1):
            await connection.execute(
                update(Book).where(Book.id == book_id).values(published_year=year)
            )


YEARS = [1990, None, 1850, 1990, None, 2020, 1700]


async def test_year_filters_are_inclusive_and_leave_out_unknown_years(
    either: GraphQLClient, engine: AsyncEngine
) -> None:
    await with_years(engine, YEARS)
    query = """
    query($from: Int, $to: Int) {
      books(filter: {publishedYearFrom: $from, publishedYearTo: $to}) {
        totalCount edges { node { publishedYear } }
      }
    }
    """
    for low, high in [(1850, 1990), (1991, None), (None, 1700), (2021, None), (None, None)]:
        expected = [
            y
            for y in YEARS
            if (low is None and high is None)
            or (y is not None and (low is None or y >= low) and (high is None or y <= high))
        ]
        for _ in range(2):
            books = (await either.execute(query, {"from": low, "to": high}))["books"]
            assert [e["node"]["publishedYear"] for e in books["edges"]] == expected
            assert books["totalCount"] == len(expected)


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_ordering_by_year_puts_unknown_years_last_and_pages_through_them(
    either: GraphQLClient, engine: AsyncEngine, direction: str
) -> None:
    """Ascending: years, then books without one; descending: the reverse. Pages of 2."""
    await with_years(engine, YEARS)
    known = sorted((y, i) for i, y in enumerate(YEARS, start=1) if y is not None)
    unknown = [(None, i) for i, y in enumerate(YEARS, start=1) if y is None]
    expected: list[tuple[int | None, int]] = [*known, *unknown]
    if direction == "DESC":
        expected.reverse()
    query = """
    query($after: String, $order: BookOrderBy) {
      books(first: 2, after: $after, orderBy: $order) {
        pageInfo { hasNextPage endCursor }
        edges { node { databaseId publishedYear } }
      }
    }
    """
    seen: list[tuple[int | None, int]] = []
    after = None
    for _ in range(len(YEARS)):
        variables = {"after": after, "order": f"PUBLISHED_YEAR_{direction}"}
        page = (await either.execute(query, variables))["books"]
        seen += [(e["node"]["publishedYear"], e["node"]["databaseId"]) for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected


async def test_the_migration_built_valid_indexes_for_the_year(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE '%published_year%'"
            )
        )
        indexes: dict[str, bool] = dict(rows.all())
    assert indexes == {"ix_books_published_year_order": True, "ix_books_published_year": True}
