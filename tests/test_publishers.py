"""Publishers: an entity added by its description, a model and a migration alone.

Everything here is derived: the connection and lookup, the mutations and their userErrors
(a name taken ignoring case, HAS_BOOKS), Book's optional publisher, the planner's single
statement, and the cost limit's count of the new connection.
"""

from typing import Any

from graphql import OperationDefinitionNode, parse
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.models import Book, Publisher
from api.db.statements import statement_counter
from api.graphql.limits import query_cost
from api.pipeline import consistency as endpoint  # where the door runs serve_planned
from tests.factories import author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient

USER_ERRORS = "userErrors { field code }"
CREATE_PUBLISHER = f"""
mutation($input: CreatePublisherInput!) {{
  createPublisher(input: $input) {{ publisher {{ id name country }} {USER_ERRORS} }}
}}
"""
UPDATE_PUBLISHER = f"""
mutation($input: UpdatePublisherInput!) {{
  updatePublisher(input: $input) {{ publisher {{ name country }} {USER_ERRORS} }}
}}
"""
DELETE_PUBLISHER = f"""
mutation($input: DeletePublisherInput!) {{
  deletePublisher(input: $input) {{ publisher {{ name }} {USER_ERRORS} }}
}}
"""
CREATE_BOOK = f"""
mutation($input: CreateBookInput!) {{
  createBook(input: $input) {{ book {{ title databaseId publisher {{ name }} }} {USER_ERRORS} }}
}}
"""
UPDATE_BOOK = f"""
mutation($input: UpdateBookInput!) {{
  updateBook(input: $input) {{ book {{ title publisher {{ name }} }} {USER_ERRORS} }}
}}
"""
NESTED = """
query($filter: PublisherFilter) {
  publishers(first: 10, orderBy: NAME_DESC, filter: $filter) {
    totalCount
    pageInfo { hasNextPage }
    edges { node {
      name country
      books(first: 5, orderBy: TITLE_ASC) {
        totalCount
        edges { node { title author { name } publisher { name } } }
      }
    } }
  }
}
"""
ONE_MILLION = """
{ publishers(first: 100) { edges { node {
  books(first: 100) { edges { node {
    author { books(first: 100) { edges { node { title } } } }
  } } }
} } } }
"""


async def create_publisher(client: GraphQLClient, **given: Any) -> dict[str, Any]:
    data = await client.execute(CREATE_PUBLISHER, {"input": given})
    payload: dict[str, Any] = data["createPublisher"]
    return payload


async def publisher_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        found = await connection.execute(select(Publisher.name, Publisher.country))
        return sorted(tuple(row) for row in found)


async def test_a_publisher_name_is_unique_ignoring_case(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    created = await create_publisher(client, name="  Faber & Faber ", country="UK")
    assert created["userErrors"] == []
    assert created["publisher"]["name"] == "Faber & Faber"

    taken = await create_publisher(client, name="FABER & faber")
    assert taken == {"publisher": None, "userErrors": [{"field": ["name"], "code": "TAKEN"}]}
    too_long = await create_publisher(client, name="x" * 101)
    assert too_long["userErrors"] == [{"field": ["name"], "code": "TOO_LONG"}]
    assert await publisher_rows(engine) == [("Faber & Faber", "UK")]

    other = await create_publisher(client, name="Picador")
    renamed = await client.execute(
        UPDATE_PUBLISHER, {"input": {"id": other["publisher"]["id"], "name": "faber & FABER"}}
    )
    assert renamed["updatePublisher"]["userErrors"] == [{"field": ["name"], "code": "TAKEN"}]
    moved = await client.execute(
        UPDATE_PUBLISHER, {"input": {"id": other["publisher"]["id"], "country": "Ireland"}}
    )
    assert moved["updatePublisher"] == {
        "publisher": {"name": "Picador", "country": "Ireland"},
        "userErrors": [],
    }


async def test_a_book_has_an_optional_publisher(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    publisher = (await create_publisher(client, name="Gollancz"))["publisher"]
    without = {"authorId": author_gid(author_id), "title": "Unpublished"}
    with_one = {**without, "title": "Published", "publisherId": publisher["id"]}

    for given in (without, with_one):
        data = await client.execute(CREATE_BOOK, {"input": given})
        assert data["createBook"]["userErrors"] == []
    query = "{ books(orderBy: TITLE_ASC) { edges { node { title publisher { name } } } } }"
    for answering in (resolver_client, client, client):  # resolvers, then planned twice
        data = await answering.execute(query)
        assert [e["node"] for e in data["books"]["edges"]] == [
            {"title": "Published", "publisher": {"name": "Gollancz"}},
            {"title": "Unpublished", "publisher": None},
        ]

    filtered = await client.execute(
        "query($id: ID!) { books(filter: { publisherId: $id }) { totalCount } }",
        {"id": publisher["id"]},
    )
    assert filtered["books"]["totalCount"] == 1


async def test_creating_a_book_without_a_publisher_is_planned(
    client: GraphQLClient, engine: AsyncEngine, monkeypatch: Any
) -> None:
    """A null reference needs no parent: the planned insert guards only the author."""
    served: list[bool] = []
    original = endpoint.serve_planned  # type: ignore[attr-defined]

    async def spy(*args: Any) -> Any:
        response = await original(*args)
        served.append(response is not None)
        return response

    monkeypatch.setattr(endpoint, "serve_planned", spy)
    (author_id,) = await insert_authors(engine, 1)
    publisher = (await create_publisher(client, name="Tor"))["publisher"]
    for extra in ({}, {"publisherId": None}, {"publisherId": publisher["id"]}):
        given = {"authorId": author_gid(author_id), "title": "Planned", **extra}
        await client.execute(CREATE_BOOK, {"input": given})  # learnt
        served.clear()
        with statement_counter() as counter:
            data = await client.execute(CREATE_BOOK, {"input": given})
        assert data["createBook"]["userErrors"] == []
        assert (served, counter.count) == ([True], 1), extra


async def test_a_missing_reference_flags_only_that_reference(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    publisher = (await create_publisher(client, name="Orbit"))["publisher"]
    nobody = "UHVibGlzaGVyOjk5OTk5OQ=="  # Publisher:999999
    cases = [
        ({"authorId": author_gid(author_id), "publisherId": nobody}, ["publisherId"]),
        ({"authorId": author_gid(999_999), "publisherId": publisher["id"]}, ["authorId"]),
    ]
    for given, field in cases:
        for answering in (resolver_client, client):
            data = await answering.execute(CREATE_BOOK, {"input": {**given, "title": "T"}})
            assert data["createBook"]["userErrors"] == [{"field": field, "code": "NOT_FOUND"}]

    created = await client.execute(
        CREATE_BOOK, {"input": {"authorId": author_gid(author_id), "title": "Moved"}}
    )
    book_id = book_gid(created["createBook"]["book"]["databaseId"])
    assert created["createBook"]["book"]["publisher"] is None
    moved = await client.execute(UPDATE_BOOK, {"input": {"id": book_id, "publisherId": nobody}})
    assert moved["updateBook"]["userErrors"] == [{"field": ["publisherId"], "code": "NOT_FOUND"}]
    moved = await client.execute(
        UPDATE_BOOK, {"input": {"id": book_id, "publisherId": publisher["id"]}}
    )
    assert moved["updateBook"]["book"]["publisher"] == {"name": "Orbit"}
    cleared = await client.execute(UPDATE_BOOK, {"input": {"id": book_id, "publisherId": None}})
    assert cleared["updateBook"]["book"]["publisher"] is None


async def test_deleting_a_publisher_with_books_is_refused_and_never_cascades(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    kept = (await create_publisher(client, name="Kept"))["publisher"]
    empty = (await create_publisher(client, name="Empty"))["publisher"]
    given = {"authorId": author_gid(author_id), "title": "Theirs", "publisherId": kept["id"]}
    await client.execute(CREATE_BOOK, {"input": given})

    refused = await client.execute(DELETE_PUBLISHER, {"input": {"id": kept["id"]}})
    assert refused["deletePublisher"] == {
        "publisher": None,
        "userErrors": [{"field": ["id"], "code": "HAS_BOOKS"}],
    }
    cascade = await client.errors(
        'mutation { deletePublisher(input: { id: "x", withBooks: true }) { publisher { name } } }'
    )
    assert "withBooks" in cascade[0]["message"]  # a publisher's books are their authors'
    deleted = await client.execute(DELETE_PUBLISHER, {"input": {"id": empty["id"]}})
    assert deleted["deletePublisher"] == {"publisher": {"name": "Empty"}, "userErrors": []}
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Book)) == 1
    assert await publisher_rows(engine) == [("Kept", None)]


async def test_a_nested_read_over_publishers_is_one_statement(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 3)
    names = ["Bloomsbury", "Canongate", "Virago"]
    publishers = [(await create_publisher(client, name=n))["publisher"] for n in names]
    for index in range(12):
        given: dict[str, Any] = {
            "authorId": author_gid(author_ids[index % 3]),
            "title": f"Title {index:02d}",
        }
        if index % 4:
            given["publisherId"] = publishers[index % 3]["id"]
        await client.execute(CREATE_BOOK, {"input": given})

    for variables in ({}, {"filter": {"name": " canongate "}}):
        expected = await resolver_client.execute(NESTED, variables)
        await client.execute(NESTED, variables)  # learnt
        with statement_counter() as counter:
            planned = await client.execute(NESTED, variables)
        assert counter.count == 1
        assert planned == expected
    everything = await client.execute(NESTED)
    assert [e["node"]["name"] for e in everything["publishers"]["edges"]] == names[::-1]
    assert everything["publishers"]["totalCount"] == 3
    books = [e["node"]["books"]["totalCount"] for e in everything["publishers"]["edges"]]
    assert sum(books) == 9


async def test_a_hundred_cubed_over_publishers_is_refused(client: GraphQLClient) -> None:
    operation = parse(ONE_MILLION).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    cost = query_cost(operation, {}, {}, default_page_size=20, max_page_size=100)
    assert cost > 100**3

    for _ in range(2):  # the second time through the query planner
        errors = await client.errors(ONE_MILLION)
        assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COSTLY"]


async def test_publishers_are_counted_by_their_triggers(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    for name in ("One", "Two"):
        await create_publisher(client, name=name)
    async with engine.connect() as connection:
        counted = await connection.scalar(text("SELECT sum(publishers) FROM row_counts"))
    assert counted == 2
    data = await client.execute("{ publishers { totalCount } }")
    assert data["publishers"]["totalCount"] == 2


async def test_a_taken_name_is_not_tried_by_the_planned_insert(
    client: GraphQLClient, engine: AsyncEngine, caplog: Any
) -> None:
    """The planned insert guards the unique name: it writes nothing and fails nothing, and
    the ordinary path answers TAKEN (no warning about a failed planned statement)."""
    await create_publisher(client, name="Hodder")
    await create_publisher(client, name="Other")  # the create is learnt
    caplog.clear()
    with statement_counter() as counter:
        taken = await create_publisher(client, name="HODDER")
    assert taken["userErrors"] == [{"field": ["name"], "code": "TAKEN"}]
    assert [r.message for r in caplog.records if r.levelname == "WARNING"] == []
    assert counter.count >= 2  # the planned statement, then the ordinary path's insert
    assert await publisher_rows(engine) == [("Hodder", None), ("Other", None)]
