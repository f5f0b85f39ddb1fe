"""The query cost limit: page sizes multiply down nested connections, judged with the variables."""

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import insert_authors
from tests.graphql_client import GraphQLClient

NESTED = """
query Nested($authors: Int!, $books: Int!) {
  authors(first: $authors) {
    edges { node { name books(first: $books) { edges { node { title } } } } }
  }
}
"""


async def test_small_pages_of_a_costly_shape_are_answered(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 3, books_each=2)
    for _ in range(2):  # the second time through the query planner
        data = await client.execute(NESTED, {"authors": 10, "books": 10})
        assert [len(e["node"]["books"]["edges"]) for e in data["authors"]["edges"]] == [2, 2, 2]


async def test_large_nested_pages_are_refused_before_anything_runs(client: GraphQLClient) -> None:
    """100 authors x 100 books is over the default 20,000 objects, whatever the data holds."""
    for _ in range(2):
        errors = await client.errors(NESTED, {"authors": 100, "books": 100})
        assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COSTLY"]
        assert "20000" in errors[0]["message"]


async def test_the_page_cap_is_reported_before_the_cost(client: GraphQLClient) -> None:
    """A page over the cap gets its own, clearer message, not the cost one."""
    errors = await client.errors(NESTED, {"authors": 5000, "books": 1})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "the largest page is 100 items" in errors[0]["message"]


async def test_fragments_are_costed_as_if_expanded(client: GraphQLClient) -> None:
    query = """
    query Spread { authors(first: 100) { edges { node { ...Shelf } } } }
    fragment Shelf on Author { books(first: 100) { edges { node { title } } } }
    """
    errors = await client.errors(query)
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
