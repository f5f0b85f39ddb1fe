import json
from typing import Any
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.relay import to_base64
from api.db.statements import statement_counter
from tests.factories import insert_authors, author_gid, book_gid
from tests.graphql_client import GraphQLClient


async def show(client: GraphQLClient, q: str, v: dict[str, Any] | None = None) -> None:
    r = await client.post(q, v)
    print(q, v, "\n ->", r.status_code, r.text[:600])


async def test_explore(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 3, books_each=2)
    await show(client, "query($id: ID!){ node(id: $id) { id ... on Author { name } } }", {"id": "garbage"})
    await show(client, '{ node(id: "garbage") { id } }')
    await show(client, "query($id: ID!){ node(id: $id) { id } }", {"id": to_base64("Unknown", 1)})
    await show(client, "query($id: ID!){ node(id: $id) { id } }", {"id": to_base64("AuthorConnection", 1)})
    await show(client, "query($id: ID!){ node(id: $id) { id } }", {"id": to_base64("Author", "x")})
    await show(client, "query($id: ID!){ node(id: $id) { id } }", {"id": to_base64("Author", 99)})
    await show(client, "query($id: ID!){ author(id: $id) { id } }", {"id": "garbage"})
    await show(client, "query($id: ID!){ author(id: $id) { id } }", {"id": book_gid(1)})
    await show(client, "query($id: ID!){ author(id: $id) { id } }", {"id": to_base64("Author", 0)})
    def cur(*parts: Any) -> str:
        import base64
        return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")
    for c in [cur("ID_ASC", 2**40, 1), cur("ID_ASC", 1, 2**40), cur("NAME_ASC", "a\u0000b", 1), cur("CREATED_AT_ASC", "2024-01-01T00:00:00", 1), cur("CREATED_AT_ASC", "2024-01-01", 1), "!!!!", "", cur("ID_ASC", 1)]:
        await show(client, "query($c: String!){ authors(after: $c, orderBy: ID_ASC) { edges { node { name } } } }", {"c": c})
    for c in [cur("NAME_ASC", "a\u0000b", 1), cur("CREATED_AT_ASC", "2024-01-01T00:00:00", 1), cur("CREATED_AT_ASC", "99999-01-01", 1)]:
        o = c and json.loads(__import__("base64").urlsafe_b64decode(c + "==="))[0]
        await show(client, "query($c: String!){ authors(after: $c, orderBy: %s) { edges { node { name } } } }" % o, {"c": c})
    await show(client, "{ authors(first: 101) { totalCount } }")
    await show(client, "{ authors(first: -1) { totalCount } }")
    await show(client, "{ authors(first: 1, last: 1) { totalCount } }")
    await show(client, '{ authors(filter: {nameContains: ""}) { totalCount } }')
    await show(client, '{ authors(filter: {country: ""}) { totalCount } }')
    await show(client, '{ books(filter: {authorId: "zzz"}) { totalCount } }')
    with statement_counter() as c1:
        await show(client, "query($a: ID!, $b: ID!){ author(id: $a) { name } node(id: $b) { ... on Author { name } } }", {"a": author_gid(1), "b": author_gid(2)})
    print("count", c1.count)
    with statement_counter() as c1:
        await client.execute("{ authors(first: 3) { totalCount edges { node { name books(first: 10) { totalCount edges { node { title author { name } } } } } } } }")
    print("count", c1.count)
