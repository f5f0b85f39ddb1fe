"""The service answers over HTTP: health, readiness and a first query."""

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import insert_authors
from tests.graphql_client import GraphQLClient


async def test_healthz_and_readyz(client: GraphQLClient) -> None:
    assert (await client.http.get("/healthz")).json() == {"status": "ok"}
    ready = await client.http.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_first_query(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 3, books_each=2)
    data = await client.execute(
        "{ authors(first: 2) { totalCount edges { node { name books { totalCount } } } } }"
    )
    assert data["authors"]["totalCount"] == 3
    assert [e["node"]["books"]["totalCount"] for e in data["authors"]["edges"]] == [2, 2]
