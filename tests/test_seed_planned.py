"""seedCatalog in bulk: planned as one statement, answered byte for byte as the resolver does,
a fixed number of statements whatever its size, all or nothing."""

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.ids import encode_id
from api.catalog.seeding import MAX_SEED_AUTHORS, MAX_SEED_BOOKS
from api.db.statements import statement_counter
from tests.graphql_client import GraphQLClient
from tests.test_planner_differential import PlannedSpy
from tests.test_seed_catalog import CATALOGUE, catalogue_rows, row_counts, seed_input

SELECTIONS = [
    "authors { id name } userErrors { field message code }",
    "__typename userErrors { code } authors { __typename databaseId name bio country id }",
    "written: authors { ... on Node { id } ... on Author { n: name } } errors: userErrors "
    "{ message }",
    "userErrors { field }",
]
TEXTS: list[dict[str, Any]] = [
    {"name": 'O"Brien \\ back', "bio": " Two lines,\nthe second.\t ", "country": "Éire"},
    {"name": "東野圭吾 📚", "country": None, "books": [{"title": "容疑者Xの献身"}]},
    {"name": "محمود درويش", "books": [{"title": "  Trimmed  ", "publishedYear": 1960}]},
    {
        "name": "Plain",
        "bio": None,
        "books": [{"title": "A"}, {"title": "B", "publishedYear": None}],
    },
    {"name": "👩🏽‍💻 Emoji joiner", "books": []},
]


def document(selection: str) -> str:
    header = "mutation Seed($input: SeedCatalogInput!)"
    return f"{header} {{ seedCatalog(input: $input) {{ {selection} }} }}"


async def fresh(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE books, authors RESTART IDENTITY CASCADE"))


def comparable(response: httpx.Response) -> tuple[int, Any]:
    """Status and bytes; for an error, its JSON without the request id (each app has its own)."""
    payload = response.json()
    if "errors" not in payload:
        return response.status_code, response.content
    for error in payload["errors"]:
        error.get("extensions", {}).pop("requestId", None)
    return response.status_code, payload


def bulk(authors: int, books_each: int, tag: str = "") -> dict[str, Any]:
    return {
        "authors": [
            {
                "name": f"Author {tag}{index:04d}",
                "country": "Kenya" if index % 2 else None,
                "books": [
                    {"title": f"Book {tag}{index:04d}-{number}", "publishedYear": 1900 + number}
                    for number in range(books_each)
                ],
            }
            for index in range(authors)
        ]
    }


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize(
    "input",
    [
        pytest.param(seed_input(CATALOGUE), id="catalogue"),
        pytest.param({"authors": TEXTS}, id="texts"),
        pytest.param({"authors": []}, id="empty"),
        pytest.param(bulk(30, 3), id="bulk"),
    ],
)
async def test_planned_seeds_answer_as_the_resolver_does(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    selection: str,
    input: dict[str, Any],
) -> None:
    spy = PlannedSpy(monkeypatch)
    expected = comparable(await resolver_client.post(document(selection), {"input": input}))
    written = await catalogue_rows(engine)
    await fresh(engine)
    spy.served.clear()

    planned = comparable(await client.post(document(selection), {"input": input}))

    assert spy.served == [True]
    assert planned == expected
    assert isinstance(planned[1], bytes)
    assert await catalogue_rows(engine) == written  # the same rows, ids and order


NO_PUBLISHER = encode_id("Publisher", 999_999)
BAD_INPUTS = [
    pytest.param(
        {"authors": [{"name": " ", "books": [{"title": "\u0007"}]}, {"name": "x" * 101}]},
        id="problems",
    ),
    pytest.param(bulk(MAX_SEED_AUTHORS + 1, 0), id="too-many-authors"),
    pytest.param(bulk(2, MAX_SEED_BOOKS // 2 + 1), id="too-many-books"),
    pytest.param({"authors": [{"name": "a", "books": [{"title": "t", "publishedYear": 3000}]}]}),
    pytest.param({**seed_input(CATALOGUE), "skipExistingAuthors": True}, id="skip-existing"),
    pytest.param({"authors": [{"name": None}]}, id="null"),
    pytest.param({"authors": [{"name": "a", "unknown": 1}]}, id="unknown-key"),
    pytest.param(
        {"authors": [{"name": "a", "books": [{"title": "t", "publisherId": NO_PUBLISHER}]}]},
        id="no-such-publisher",
    ),
]


@pytest.mark.parametrize("input", BAD_INPUTS)
async def test_what_the_planner_leaves_to_the_resolver_is_answered_alike(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine, input: Any
) -> None:
    """userErrors, refused variables and skipExistingAuthors: the same answer, same rows."""
    selection = SELECTIONS[0]
    expected = comparable(await resolver_client.post(document(selection), {"input": input}))
    written = await catalogue_rows(engine)
    await fresh(engine)

    assert comparable(await client.post(document(selection), {"input": input})) == expected
    assert await catalogue_rows(engine) == written


async def test_books_given_a_publisher_are_planned_and_answered_alike(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with engine.begin() as connection:
        publisher = await connection.scalar(
            text("INSERT INTO publishers (name) VALUES ('Tor') RETURNING id")
        )
    given = encode_id("Publisher", publisher)
    seed = bulk(3, 2)
    for author in seed["authors"]:
        author["books"][0]["publisherId"] = given
    query = document("authors { id name } userErrors { code }")
    spy = PlannedSpy(monkeypatch)
    expected = comparable(await resolver_client.post(query, {"input": seed}))
    written = await catalogue_rows(engine)
    await fresh(engine)
    spy.served.clear()

    assert comparable(await client.post(query, {"input": seed})) == expected
    assert spy.served == [True]
    assert await catalogue_rows(engine) == written
    read = await client.execute(
        "{ authors(first: 1) { edges { node { books { edges { node { publisher { name } } } } } } }"
        " }"
    )
    (author,) = read["authors"]["edges"]
    books = author["node"]["books"]["edges"]
    assert [book["node"]["publisher"] for book in books] == [{"name": "Tor"}, None]


async def seed_statements(client: GraphQLClient, input: dict[str, Any]) -> int:
    with statement_counter() as counter:
        data = await client.execute(document(SELECTIONS[0]), {"input": input})
    assert data["seedCatalog"]["userErrors"] == []
    assert len(data["seedCatalog"]["authors"]) == len(input["authors"])
    return counter.count


async def test_a_seed_costs_the_same_statements_for_ten_rows_or_eleven_thousand(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """One statement planned; on the resolver, a few for its transaction, none per row."""
    await client.execute("{ authors(first: 1) { totalCount } }")  # connections in the pools
    await resolver_client.execute("{ authors(first: 1) { totalCount } }")
    planned = [await seed_statements(client, bulk(n, b, f"p{n}")) for n, b in ((5, 1), (1000, 10))]
    resolved = [
        await seed_statements(resolver_client, bulk(n, b, f"r{n}")) for n, b in ((5, 1), (1000, 10))
    ]

    assert planned == [1, 1]
    assert resolved[0] == resolved[1] <= 3
    assert await row_counts(engine) == (2 * 1005, 2 * 10_005)
    totals = await client.execute("{ authors { totalCount } books { totalCount } }")
    assert totals == {"authors": {"totalCount": 2010}, "books": {"totalCount": 20_010}}


FAIL_ON_TITLE = """
CREATE OR REPLACE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title = 'boom' THEN RAISE EXCEPTION 'refused for the test'; END IF;
    RETURN NEW;
END $$
"""


@pytest.fixture
async def failing_title(engine: AsyncEngine) -> Any:
    """Books titled 'boom' fail inside the database, after the rows before them were written."""
    async with engine.begin() as connection:
        await connection.execute(text(FAIL_ON_TITLE))
        await connection.execute(
            text(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON books "
                "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
            )
        )
    yield
    async with engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER refuse_boom ON books"))
        await connection.execute(text("DROP FUNCTION refuse_boom()"))


@pytest.mark.usefixtures("failing_title")
@pytest.mark.parametrize("planner", [True, False])
async def test_a_failure_in_the_middle_writes_nothing(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine, planner: bool
) -> None:
    seed = bulk(1000, 10)
    seed["authors"][600]["books"][4]["title"] = "boom"
    before = await row_counts(engine)

    response = await (client if planner else resolver_client).post(
        document(SELECTIONS[0]), {"input": seed}
    )

    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert response.json()["data"] is None
    assert await row_counts(engine) == before == (0, 0)
    totals = await client.execute("{ authors { totalCount } books { totalCount } }")
    assert totals == {"authors": {"totalCount": 0}, "books": {"totalCount": 0}}
