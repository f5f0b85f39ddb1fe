"""seedCatalog: a whole catalogue in one transaction, or nothing at all."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.seed_mutation import MAX_SEED_AUTHORS, MAX_SEED_BOOKS
from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient

SEED = """
mutation Seed($input: SeedCatalogInput!) {
  seedCatalog(input: $input) {
    authors {
      id
      databaseId
      name
      bio
      country
      books(first: 100) { totalCount edges { node { title author { id name } } } }
    }
    userErrors { field message code }
  }
}
"""

# name, country, book titles
Entry = tuple[str, str | None, list[str]]

CATALOGUE: list[Entry] = [
    ("Ursula K. Le Guin", "United States", ["A Wizard of Earthsea", "The Dispossessed"]),
    ("Chinua Achebe", "Nigeria", ["Things Fall Apart"]),
    ("Wisława Szymborska", "Poland", ["View with a Grain of Sand", "Here", "Map"]),
    ("محمود درويش", None, []),
    ("Haruki Murakami", "Japan", ["ノルウェイの森", "1Q84"]),
]


def seed_input(entries: list[Entry], *, skip_existing: bool | None = None) -> dict[str, Any]:
    authors = [
        {"name": name, "country": country, "books": [{"title": t} for t in titles]}
        for name, country, titles in entries
    ]
    input: dict[str, Any] = {"authors": authors}
    if skip_existing is not None:
        input["skipExistingAuthors"] = skip_existing
    return input


async def seed(client: GraphQLClient, input: dict[str, Any]) -> dict[str, Any]:
    """The payload; a seed never answers with top-level errors."""
    data = await client.execute(SEED, {"input": input})
    payload: dict[str, Any] = data["seedCatalog"]
    return payload


async def catalogue_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """(author id, name, country, book title or None) for every author and book."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT a.id, a.name, a.country, b.title FROM authors a"
                " LEFT JOIN books b ON b.author_id = a.id ORDER BY a.id, b.id"
            )
        )
        return [tuple(row) for row in rows]


async def row_counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        authors = await connection.scalar(text("SELECT count(*) FROM authors"))
        books = await connection.scalar(text("SELECT count(*) FROM books"))
    return authors or 0, books or 0


def books_of(author: dict[str, Any]) -> list[str]:
    return [edge["node"]["title"] for edge in author["books"]["edges"]]


async def refused_seed(client: GraphQLClient, input: dict[str, Any]) -> dict[str, Any]:
    """The one request error of a seed refused at the front door, before any coercion."""
    response = await client.post(SEED, {"input": input})
    payload = response.json()
    assert "data" not in payload, payload
    (error,) = payload["errors"]
    assert isinstance(error, dict)
    return error


def errors_of(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    assert all(error["message"].strip() for error in payload["userErrors"]), payload
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


def total_books(entries: list[Entry]) -> int:
    return sum(len(titles) for _, _, titles in entries)


async def test_seed_writes_every_author_with_their_books(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await seed(client, seed_input(CATALOGUE))

    assert payload["userErrors"] == []
    authors = payload["authors"]
    assert [(a["name"], a["country"]) for a in authors] == [(n, c) for n, c, _ in CATALOGUE]
    for author, (_, _, titles) in zip(authors, CATALOGUE, strict=True):
        assert author["id"] == author_gid(author["databaseId"])
        assert author["books"]["totalCount"] == len(titles)
        assert books_of(author) == titles
        assert {edge["node"]["author"]["id"] for edge in author["books"]["edges"]} <= {author["id"]}

    assert await row_counts(engine) == (len(CATALOGUE), total_books(CATALOGUE))
    # Each book belongs to the author it was given under, in the database too.
    rows = await catalogue_rows(engine)
    by_name: dict[str, list[str]] = {}
    ids = {}
    for author_id, name, _, title in rows:
        by_name.setdefault(name, [])
        ids[name] = author_id
        if title is not None:
            by_name[name].append(title)
    assert by_name == {name: titles for name, _, titles in CATALOGUE}
    assert ids == {a["name"]: a["databaseId"] for a in authors}


async def test_seed_trims_text_like_the_other_mutations(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await seed(
        client,
        {
            "authors": [
                {
                    "name": "  Gabriel García Márquez ",
                    "bio": " Colombian novelist.\nJournalist. ",
                    "country": " Colombia ",
                    "books": [{"title": "  Love in the Time of Cholera  "}],
                }
            ]
        },
    )

    assert payload["userErrors"] == []
    (author,) = payload["authors"]
    assert (author["name"], author["bio"], author["country"]) == (
        "Gabriel García Márquez",
        "Colombian novelist.\nJournalist.",
        "Colombia",
    )
    assert books_of(author) == ["Love in the Time of Cholera"]
    assert await catalogue_rows(engine) == [
        (author["databaseId"], "Gabriel García Márquez", "Colombia", "Love in the Time of Cholera")
    ]


async def test_seed_with_no_authors_writes_nothing(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await seed(client, {"authors": []})

    assert payload == {"authors": [], "userErrors": []}
    assert await row_counts(engine) == (0, 0)


def with_change(author_index: int, change: dict[str, Any]) -> dict[str, Any]:
    input = seed_input(CATALOGUE)
    input["authors"][author_index].update(change)
    return input


def with_title(author_index: int, book_index: int, title: str) -> dict[str, Any]:
    input = seed_input(CATALOGUE)
    input["authors"][author_index]["books"][book_index]["title"] = title
    return input


@pytest.mark.parametrize(
    ("input", "field", "code"),
    [
        pytest.param(
            with_title(2, 1, "   "), ["authors", "2", "books", "1", "title"], "BLANK", id="title"
        ),
        pytest.param(
            with_title(4, 0, "t" * 201),
            ["authors", "4", "books", "0", "title"],
            "TOO_LONG",
            id="title-too-long",
        ),
        pytest.param(
            with_title(0, 1, "Earth\u0007sea"),
            ["authors", "0", "books", "1", "title"],
            "CONTROL_CHARACTERS",
            id="title-control",
        ),
        pytest.param(with_change(0, {"name": ""}), ["authors", "0", "name"], "BLANK", id="name"),
        pytest.param(
            with_change(4, {"name": "n" * 101}), ["authors", "4", "name"], "TOO_LONG", id="long"
        ),
        pytest.param(
            with_change(3, {"country": "c" * 101}),
            ["authors", "3", "country"],
            "TOO_LONG",
            id="country",
        ),
        pytest.param(
            with_change(1, {"bio": "nul \u0000"}),
            ["authors", "1", "bio"],
            "CONTROL_CHARACTERS",
            id="bio",
        ),
    ],
)
async def test_one_bad_entry_anywhere_writes_nothing(
    client: GraphQLClient,
    engine: AsyncEngine,
    input: dict[str, Any],
    field: list[str],
    code: str,
) -> None:
    await insert_authors(engine, 2, books_each=1)
    before = await catalogue_rows(engine)

    payload = await seed(client, input)

    assert errors_of(payload) == [(field, code)]
    assert payload["authors"] == []
    assert await catalogue_rows(engine) == before


async def test_every_bad_entry_is_reported(client: GraphQLClient, engine: AsyncEngine) -> None:
    input = seed_input(CATALOGUE)
    input["authors"][0]["name"] = " "
    input["authors"][1]["books"][0]["title"] = ""
    input["authors"][2]["country"] = "Po\nland"
    input["authors"][2]["books"][2]["title"] = "x" * 201
    input["authors"][4]["books"][1]["title"] = "\u0000"

    payload = await seed(client, input)

    assert errors_of(payload) == [
        (["authors", "0", "name"], "BLANK"),
        (["authors", "1", "books", "0", "title"], "BLANK"),
        (["authors", "2", "country"], "CONTROL_CHARACTERS"),
        (["authors", "2", "books", "2", "title"], "TOO_LONG"),
        (["authors", "4", "books", "1", "title"], "CONTROL_CHARACTERS"),
    ]
    assert payload["authors"] == []
    assert await row_counts(engine) == (0, 0)


async def test_seeding_twice_with_skip_existing_adds_nothing(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    first = await seed(client, seed_input(CATALOGUE, skip_existing=True))
    assert first["userErrors"] == []
    assert [a["name"] for a in first["authors"]] == [name for name, _, _ in CATALOGUE]
    after_first = await catalogue_rows(engine)
    assert len(after_first) == total_books(CATALOGUE) + sum(
        1 for _, _, titles in CATALOGUE if not titles
    )

    second = await seed(client, seed_input(CATALOGUE, skip_existing=True))

    assert second == {"authors": [], "userErrors": []}
    assert await catalogue_rows(engine) == after_first
    assert await row_counts(engine) == (len(CATALOGUE), total_books(CATALOGUE))


async def test_concurrent_seeds_with_skip_existing_write_each_author_once(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    runs = 3
    payloads = await asyncio.gather(
        *(seed(client, seed_input(CATALOGUE, skip_existing=True)) for _ in range(runs))
    )

    assert all(payload["userErrors"] == [] for payload in payloads)
    written = sorted(author["name"] for payload in payloads for author in payload["authors"])
    assert written == sorted(name for name, _, _ in CATALOGUE)
    assert await row_counts(engine) == (len(CATALOGUE), total_books(CATALOGUE))


async def test_skip_existing_skips_exact_names_with_their_books(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    created = await client.execute(
        """
        mutation {
          createAuthor(input: {name: "Chinua Achebe"}) { author { id } userErrors { code } }
        }
        """
    )
    achebe = created["createAuthor"]["author"]["id"]
    await client.execute(
        'mutation($id: ID!) { createBook(input: {authorId: $id, title: "Arrow of God"}) '
        "{ userErrors { code } } }",
        {"id": achebe},
    )

    payload = await seed(
        client,
        seed_input(
            [
                ("  Chinua Achebe ", "Nigeria", ["Things Fall Apart", "No Longer at Ease"]),
                ("chinua achebe", None, ["Lowercase"]),
                ("Ngũgĩ wa Thiong'o", "Kenya", ["Weep Not, Child"]),
            ],
            skip_existing=True,
        ),
    )

    assert payload["userErrors"] == []
    assert [(a["name"], books_of(a)) for a in payload["authors"]] == [
        ("chinua achebe", ["Lowercase"]),
        ("Ngũgĩ wa Thiong'o", ["Weep Not, Child"]),
    ]
    rows = await catalogue_rows(engine)
    assert [(name, country, title) for _, name, country, title in rows] == [
        ("Chinua Achebe", None, "Arrow of God"),
        ("chinua achebe", None, "Lowercase"),
        ("Ngũgĩ wa Thiong'o", "Kenya", "Weep Not, Child"),
    ]


async def test_seeding_twice_without_skip_existing_duplicates(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Documented: without skipExistingAuthors a seed is not idempotent."""
    for explicit in (None, False):
        payload = await seed(client, seed_input(CATALOGUE, skip_existing=explicit))
        assert payload["userErrors"] == []
        assert len(payload["authors"]) == len(CATALOGUE)

    assert await row_counts(engine) == (2 * len(CATALOGUE), 2 * total_books(CATALOGUE))
    async with engine.connect() as connection:
        names = list(await connection.scalars(text("SELECT name FROM authors ORDER BY id")))
    assert names == [name for name, _, _ in CATALOGUE] * 2


def many_authors(count: int, books_each: int = 0) -> list[Entry]:
    return [
        (f"Prolific {index:05d}", None, [f"Work {index:05d}-{n}" for n in range(books_each)])
        for index in range(count)
    ]


async def test_too_many_authors_is_refused(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 1)

    error = await refused_seed(client, seed_input(many_authors(MAX_SEED_AUTHORS + 1)))

    assert error["extensions"] == {"code": "TOO_MANY", "field": ["input", "authors"]}
    assert str(MAX_SEED_AUTHORS) in error["message"]
    assert await row_counts(engine) == (1, 0)


async def test_too_many_authors_written_inline_never_get_past_the_token_limit(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    """An input in the document itself is not a variable: the document's own limits bound it
    long before the cap (and the resolver holds it to the same cap if they are raised)."""
    authors = ", ".join(f'{{name: "A{n}"}}' for n in range(MAX_SEED_AUTHORS + 1))
    response = await client.post(
        f"mutation {{ seedCatalog(input: {{authors: [{authors}]}}) {{ authors {{ name }} }} }}"
    )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert await row_counts(engine) == (0, 0)


async def test_exactly_the_maximum_of_authors_is_accepted(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    data = await client.execute(
        "mutation($input: SeedCatalogInput!) { seedCatalog(input: $input) "
        "{ authors { name } userErrors { code } } }",
        {"input": seed_input(many_authors(MAX_SEED_AUTHORS))},
    )

    payload = data["seedCatalog"]
    assert payload["userErrors"] == []
    assert len(payload["authors"]) == MAX_SEED_AUTHORS
    assert await row_counts(engine) == (MAX_SEED_AUTHORS, 0)


async def test_exactly_the_maximum_of_books_is_accepted(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    per_author = 250
    entries = many_authors(MAX_SEED_BOOKS // per_author, books_each=per_author)
    assert total_books(entries) == MAX_SEED_BOOKS

    data = await client.execute(
        "mutation($input: SeedCatalogInput!) { seedCatalog(input: $input) "
        "{ authors { name books { totalCount } } userErrors { code } } }",
        {"input": seed_input(entries)},
    )

    payload = data["seedCatalog"]
    assert payload["userErrors"] == []
    assert [a["books"]["totalCount"] for a in payload["authors"]] == [per_author] * len(entries)
    assert await row_counts(engine) == (len(entries), MAX_SEED_BOOKS)
    async with engine.connect() as connection:
        mismatched = await connection.scalar(
            text(
                "SELECT count(*) FROM books b JOIN authors a ON a.id = b.author_id"
                " WHERE split_part(split_part(b.title, ' ', 2), '-', 1)"
                " <> split_part(a.name, ' ', 2)"
            )
        )
    assert mismatched == 0  # every "Work 00042-n" belongs to "Prolific 00042"


async def test_too_many_books_is_refused(client: GraphQLClient, engine: AsyncEngine) -> None:
    # Books spread over authors so that no single author holds the excess.
    per_author = 100
    entries = many_authors(MAX_SEED_BOOKS // per_author, books_each=per_author)
    entries.append(("One Too Many", None, ["The Last Straw"]))
    assert total_books(entries) == MAX_SEED_BOOKS + 1

    error = await refused_seed(client, seed_input(entries))

    assert error["extensions"] == {"code": "TOO_MANY", "field": ["input", "authors", "*", "books"]}
    assert str(MAX_SEED_BOOKS) in error["message"]
    assert await row_counts(engine) == (0, 0)


async def test_too_many_books_for_one_author_is_refused(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    entries: list[Entry] = [
        ("Graphomaniac", None, [f"Vol. {n}" for n in range(MAX_SEED_BOOKS + 1)])
    ]

    error = await refused_seed(client, seed_input(entries))

    assert error["extensions"]["code"] == "TOO_MANY"
    assert await row_counts(engine) == (0, 0)
