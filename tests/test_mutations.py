"""Every mutation over HTTP: what it writes, what it refuses, and that a refusal writes nothing."""

import base64
import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.problems import InvalidValue, ProblemCode
from api.catalog.text import clean_text
from tests.factories import author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient

AUTHOR_FIELDS = "id databaseId name bio country"
BOOK_FIELDS = "id databaseId title author { id name }"

# Each mutation's input type and the payload fields asked for (besides userErrors).
MUTATIONS = {
    "createAuthor": ("CreateAuthorInput", f"author {{ {AUTHOR_FIELDS} }}"),
    "updateAuthor": ("UpdateAuthorInput", f"author {{ {AUTHOR_FIELDS} }}"),
    "deleteAuthor": ("DeleteAuthorInput", f"author {{ {AUTHOR_FIELDS} }} deletedBookIds"),
    "createBook": ("CreateBookInput", f"book {{ {BOOK_FIELDS} }}"),
    "updateBook": ("UpdateBookInput", f"book {{ {BOOK_FIELDS} }}"),
    "deleteBook": ("DeleteBookInput", f"book {{ {BOOK_FIELDS} }}"),
}
# The payload field that carries the affected object.
SUBJECT = {name: "book" if "Book" in name else "author" for name in MUTATIONS}

Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def document(mutation: str) -> str:
    input_type, selection = MUTATIONS[mutation]
    return (
        f"mutation Run($input: {input_type}!) {{ {mutation}(input: $input) "
        f"{{ {selection} userErrors {{ field message code }} }} }}"
    )


async def run(client: GraphQLClient, mutation: str, input: dict[str, Any]) -> dict[str, Any]:
    """The mutation's payload; the response must have no top-level errors."""
    data = await client.execute(document(mutation), {"input": input})
    payload: dict[str, Any] = data[mutation]
    return payload


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of both tables, to show that a refused mutation changed nothing."""
    async with engine.connect() as connection:
        authors = await connection.execute(
            text("SELECT id, name, bio, country FROM authors ORDER BY id")
        )
        books = await connection.execute(text("SELECT id, title, author_id FROM books ORDER BY id"))
        return [tuple(row) for row in authors], [tuple(row) for row in books]


async def row_counts(engine: AsyncEngine) -> tuple[int, int]:
    authors, books = await snapshot(engine)
    return len(authors), len(books)


async def author_row(engine: AsyncEngine, database_id: int) -> tuple[Any, ...] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT name, bio, country FROM authors WHERE id = :id"), {"id": database_id}
            )
        ).one_or_none()
    return None if row is None else tuple(row)


async def book_row(engine: AsyncEngine, database_id: int) -> tuple[Any, ...] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT title, author_id FROM books WHERE id = :id"), {"id": database_id}
            )
        ).one_or_none()
    return None if row is None else tuple(row)


async def assert_refused(
    client: GraphQLClient,
    engine: AsyncEngine,
    mutation: str,
    input: dict[str, Any],
    expected: list[tuple[list[str], str]],
) -> dict[str, Any]:
    """The mutation returns exactly these (field, code) user errors and writes nothing."""
    before = await snapshot(engine)
    payload = await run(client, mutation, input)
    assert payload[SUBJECT[mutation]] is None, payload
    assert [(error["field"], error["code"]) for error in payload["userErrors"]] == expected
    assert all(error["message"].strip() for error in payload["userErrors"]), payload
    assert await snapshot(engine) == before
    return payload


def raw_gid(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Ids that can never name an author; `field` is where the error points.
INVALID_AUTHOR_IDS = [
    pytest.param("garbage", id="garbage"),
    pytest.param("", id="empty"),
    pytest.param(raw_gid("Author1"), id="base64-without-colon"),
    pytest.param(book_gid(1), id="id-of-a-book"),
    pytest.param(author_gid(0), id="zero"),
    pytest.param(raw_gid("Author:-1"), id="negative"),
    pytest.param(raw_gid("Author:abc"), id="not-numeric"),
    pytest.param(raw_gid("Author:99999999999999999999"), id="huge"),
    pytest.param(author_gid(2**31), id="beyond-int4"),
]
INVALID_BOOK_IDS = [
    pytest.param("garbage", id="garbage"),
    pytest.param(raw_gid("Book1"), id="base64-without-colon"),
    pytest.param(author_gid(1), id="id-of-an-author"),
    pytest.param(book_gid(0), id="zero"),
    pytest.param(raw_gid("Book:99999999999999999999"), id="huge"),
]


# --- createAuthor -------------------------------------------------------------------------


async def test_create_author_trims_and_stores_every_field(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    bio = "Polish poet.\nNobel Prize in Literature, 1996.\n\tLast line."
    payload = await run(
        client,
        "createAuthor",
        {"name": "  Wisława Szymborska  ", "bio": f"  {bio}\n ", "country": " Poland\t"},
    )

    assert payload["userErrors"] == []
    author = payload["author"]
    assert (author["name"], author["bio"], author["country"]) == (
        "Wisława Szymborska",
        bio,
        "Poland",
    )
    assert author["id"] == author_gid(author["databaseId"])
    assert await author_row(engine, author["databaseId"]) == ("Wisława Szymborska", bio, "Poland")
    assert await row_counts(engine) == (1, 0)


async def test_create_author_with_only_a_name_leaves_bio_and_country_null(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await run(client, "createAuthor", {"name": "Chinua Achebe"})

    assert payload["userErrors"] == []
    assert (payload["author"]["bio"], payload["author"]["country"]) == (None, None)
    assert await author_row(engine, payload["author"]["databaseId"]) == (
        "Chinua Achebe",
        None,
        None,
    )


async def test_create_author_stores_blank_optional_fields_as_null(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await run(client, "createAuthor", {"name": "Anonymous", "bio": "  ", "country": ""})

    assert payload["userErrors"] == []
    assert await author_row(engine, payload["author"]["databaseId"]) == ("Anonymous", None, None)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("محمود درويش", id="arabic"),
        pytest.param("村上 春樹", id="japanese"),
        pytest.param("Ngũgĩ wa Thiong'o", id="latin-diacritics"),
        pytest.param("Poet 📚🖋️ 👩🏽‍💻", id="emoji-and-zwj"),
        pytest.param("Cafe\u0301 Society", id="combining-accent-not-normalised"),
    ],
)
async def test_create_author_round_trips_unicode_exactly(
    client: GraphQLClient, engine: AsyncEngine, name: str
) -> None:
    payload = await run(client, "createAuthor", {"name": name, "country": name})

    assert payload["userErrors"] == []
    assert payload["author"]["name"] == name
    assert await author_row(engine, payload["author"]["databaseId"]) == (name, None, name)
    # And it reads back the same way through a query.
    data = await client.execute(
        "query Q($id: ID!) { author(id: $id) { name country } }", {"id": payload["author"]["id"]}
    )
    assert data["author"] == {"name": name, "country": name}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", "a" * 100, id="name-ascii"),
        pytest.param("name", "ł" * 100, id="name-2-byte"),
        pytest.param("name", "字" * 100, id="name-3-byte"),
        pytest.param("name", "📚" * 100, id="name-4-byte"),
        pytest.param("name", "   " + "b" * 100 + "   ", id="name-limit-after-trimming"),
        pytest.param("country", "ü" * 100, id="country"),
        pytest.param("bio", "ж" * 5000, id="bio"),
    ],
)
async def test_create_author_accepts_text_exactly_at_the_limit(
    client: GraphQLClient, engine: AsyncEngine, field: str, value: str
) -> None:
    input = {"name": "Someone", field: value}
    payload = await run(client, "createAuthor", input)

    assert payload["userErrors"] == []
    assert payload["author"][field] == value.strip()
    row = await author_row(engine, payload["author"]["databaseId"])
    assert row is not None
    assert dict(zip(("name", "bio", "country"), row, strict=True))[field] == value.strip()


@pytest.mark.parametrize(
    ("input", "field", "code"),
    [
        pytest.param({"name": ""}, "name", "BLANK", id="name-empty"),
        pytest.param({"name": "   \t  "}, "name", "BLANK", id="name-whitespace"),
        pytest.param({"name": "\u00a0\u2003\u3000"}, "name", "BLANK", id="name-unicode-spaces"),
        pytest.param({"name": " \n\n "}, "name", "BLANK", id="name-only-newlines"),
        pytest.param({"name": "a" * 101}, "name", "TOO_LONG", id="name-101"),
        pytest.param({"name": "ł" * 101}, "name", "TOO_LONG", id="name-101-multibyte"),
        pytest.param({"name": "📚" * 101}, "name", "TOO_LONG", id="name-101-emoji"),
        pytest.param({"name": "X", "country": "c" * 101}, "country", "TOO_LONG", id="country"),
        pytest.param({"name": "X", "bio": "b" * 5001}, "bio", "TOO_LONG", id="bio"),
        pytest.param({"name": "Nul\u0000Byte"}, "name", "CONTROL_CHARACTERS", id="name-nul"),
        pytest.param({"name": "\u0000"}, "name", "CONTROL_CHARACTERS", id="name-only-nul"),
        pytest.param({"name": "Bell\u0007"}, "name", "CONTROL_CHARACTERS", id="name-bell"),
        pytest.param({"name": "Del\u007fete"}, "name", "CONTROL_CHARACTERS", id="name-del"),
        pytest.param({"name": "Two\nLines"}, "name", "CONTROL_CHARACTERS", id="name-newline"),
        pytest.param({"name": "Tab\tbed"}, "name", "CONTROL_CHARACTERS", id="name-tab"),
        pytest.param(
            {"name": "X", "country": "Po\nland"}, "country", "CONTROL_CHARACTERS", id="country-nl"
        ),
        pytest.param(
            {"name": "X", "bio": "ok\nbut \u0000"}, "bio", "CONTROL_CHARACTERS", id="bio-nul"
        ),
        pytest.param(
            {"name": "X", "bio": "escape \u001b[31m"}, "bio", "CONTROL_CHARACTERS", id="bio-esc"
        ),
    ],
)
async def test_create_author_refuses_invalid_text(
    client: GraphQLClient, engine: AsyncEngine, input: dict[str, Any], field: str, code: str
) -> None:
    await insert_authors(engine, 2)
    await assert_refused(client, engine, "createAuthor", input, [([field], code)])


async def test_create_author_reports_every_bad_field_at_once(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await assert_refused(
        client,
        engine,
        "createAuthor",
        {"name": " ", "bio": "\u0007", "country": "c" * 101},
        [(["name"], "BLANK"), (["bio"], "CONTROL_CHARACTERS"), (["country"], "TOO_LONG")],
    )


async def test_too_long_message_counts_characters_not_bytes(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    payload = await assert_refused(
        client, engine, "createAuthor", {"name": "字" * 101}, [(["name"], "TOO_LONG")]
    )
    message = payload["userErrors"][0]["message"]
    assert "101" in message
    assert "100" in message
    assert str(len("字".encode()) * 101) not in message


@pytest.mark.parametrize(
    ("mutation", "input", "field"),
    [
        pytest.param("createAuthor", {"name": "Half \ud800 pair"}, "name", id="author-name"),
        pytest.param("createAuthor", {"name": "X", "bio": "\udfff"}, "bio", id="author-bio"),
        pytest.param(
            "createBook", {"authorId": author_gid(1), "title": "T\ud83d"}, "title", id="book-title"
        ),
    ],
)
async def test_unpaired_surrogate_is_refused_before_anything_runs(
    client: GraphQLClient, engine: AsyncEngine, mutation: str, input: dict[str, Any], field: str
) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"); it is not text Postgres can store.

    The body is not valid unicode, so it is refused as a whole with a 400 that says so: never
    an INTERNAL_SERVER_ERROR, and nothing written. (`clean_text` refuses such text too, for
    callers that do not come through HTTP.)
    """
    await insert_authors(engine, 1)
    before = await snapshot(engine)
    # httpx cannot encode a lone surrogate as UTF-8, so send the \u escape as JSON does.
    body = json.dumps({"query": document(mutation), "variables": {"input": input}})
    response = await client.http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert "invalid unicode" in response.text
    assert await snapshot(engine) == before
    with pytest.raises(InvalidValue) as refused:
        clean_text(input[field], field=(field,), max_length=5000)
    assert refused.value.problem.code == ProblemCode.CONTROL_CHARACTERS


# --- updateAuthor -------------------------------------------------------------------------


async def test_update_author_keeps_fields_left_out(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, countries=["Nigeria"])
    before = await author_row(engine, author_id)
    assert before == ("Author 000", "Bio 0", "Nigeria")

    payload = await run(client, "updateAuthor", {"id": author_gid(author_id), "country": " Kenya "})

    assert payload["userErrors"] == []
    expected = {
        "id": author_gid(author_id),
        "databaseId": author_id,
        "name": "Author 000",
        "bio": "Bio 0",
        "country": "Kenya",
    }
    assert payload["author"] == expected
    assert await author_row(engine, author_id) == ("Author 000", "Bio 0", "Kenya")


async def test_update_author_changes_name_only(client: GraphQLClient, engine: AsyncEngine) -> None:
    (author_id,) = await insert_authors(engine, 1, countries=["Japan"])

    payload = await run(
        client, "updateAuthor", {"id": author_gid(author_id), "name": "  محمود درويش "}
    )

    assert payload["userErrors"] == []
    assert payload["author"]["name"] == "محمود درويش"
    assert await author_row(engine, author_id) == ("محمود درويش", "Bio 0", "Japan")


async def test_update_author_null_clears_bio_and_country(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, countries=["Japan"])

    payload = await run(
        client, "updateAuthor", {"id": author_gid(author_id), "bio": None, "country": None}
    )

    assert payload["userErrors"] == []
    assert (payload["author"]["bio"], payload["author"]["country"]) == (None, None)
    assert await author_row(engine, author_id) == ("Author 000", None, None)


async def test_update_author_with_only_an_id_changes_nothing(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, countries=["Japan"])
    before = await snapshot(engine)

    payload = await run(client, "updateAuthor", {"id": author_gid(author_id)})

    assert payload["userErrors"] == []
    assert payload["author"]["name"] == "Author 000"
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        pytest.param({"name": None}, "name", "BLANK", id="name-null"),
        pytest.param({"name": ""}, "name", "BLANK", id="name-empty"),
        pytest.param({"name": "  "}, "name", "BLANK", id="name-whitespace"),
        pytest.param({"name": "n" * 101}, "name", "TOO_LONG", id="name-too-long"),
        pytest.param({"name": "a\u0007b"}, "name", "CONTROL_CHARACTERS", id="name-bell"),
        pytest.param({"country": "c" * 101}, "country", "TOO_LONG", id="country-too-long"),
        pytest.param({"bio": "\u0000"}, "bio", "CONTROL_CHARACTERS", id="bio-nul"),
    ],
)
async def test_update_author_refuses_invalid_text(
    client: GraphQLClient, engine: AsyncEngine, change: dict[str, Any], field: str, code: str
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    await assert_refused(
        client, engine, "updateAuthor", {"id": author_gid(author_id), **change}, [([field], code)]
    )


async def test_update_author_refuses_a_bad_field_even_with_good_ones(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    await assert_refused(
        client,
        engine,
        "updateAuthor",
        {"id": author_gid(author_id), "name": "Fine Name", "country": "Bad\ncountry"},
        [(["country"], "CONTROL_CHARACTERS")],
    )


@pytest.mark.parametrize("bad_id", INVALID_AUTHOR_IDS)
async def test_update_author_refuses_an_invalid_id(
    client: GraphQLClient, engine: AsyncEngine, bad_id: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client, engine, "updateAuthor", {"id": bad_id, "name": "New"}, [(["id"], "INVALID_ID")]
    )


async def test_update_author_reports_invalid_id_and_bad_name_together(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await assert_refused(
        client,
        engine,
        "updateAuthor",
        {"id": "garbage", "name": ""},
        [(["id"], "INVALID_ID"), (["name"], "BLANK")],
    )


@pytest.mark.parametrize("missing", [1000, 2**31 - 1])
async def test_update_author_missing_is_not_found(
    client: GraphQLClient, engine: AsyncEngine, missing: int
) -> None:
    await insert_authors(engine, 2)
    await assert_refused(
        client,
        engine,
        "updateAuthor",
        {"id": author_gid(missing), "name": "New"},
        [(["id"], "NOT_FOUND")],
    )
    # Also with nothing to change.
    await assert_refused(
        client, engine, "updateAuthor", {"id": author_gid(missing)}, [(["id"], "NOT_FOUND")]
    )


# --- deleteAuthor -------------------------------------------------------------------------


async def test_delete_author_without_books(client: GraphQLClient, engine: AsyncEngine) -> None:
    first, second = await insert_authors(engine, 2, countries=["Japan"])

    payload = await run(client, "deleteAuthor", {"id": author_gid(first)})

    assert payload["userErrors"] == []
    assert payload["deletedBookIds"] == []
    assert payload["author"] == {
        "id": author_gid(first),
        "databaseId": first,
        "name": "Author 000",
        "bio": "Bio 0",
        "country": "Japan",
    }
    assert await author_row(engine, first) is None
    assert await author_row(engine, second) is not None
    assert await row_counts(engine) == (1, 0)


async def test_delete_author_with_books_is_refused(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_id, _ = await insert_authors(engine, 2, books_each=3)

    payload = await assert_refused(
        client, engine, "deleteAuthor", {"id": author_gid(author_id)}, [(["id"], "HAS_BOOKS")]
    )
    assert payload["deletedBookIds"] == []
    assert await row_counts(engine) == (2, 6)


async def test_delete_author_with_books_false_is_refused(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client,
        engine,
        "deleteAuthor",
        {"id": author_gid(author_id), "withBooks": False},
        [(["id"], "HAS_BOOKS")],
    )


async def test_delete_author_with_books_deletes_them_too(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    doomed, kept = await insert_authors(engine, 2, books_each=3)
    async with engine.connect() as connection:
        doomed_books = list(
            await connection.scalars(
                text("SELECT id FROM books WHERE author_id = :id"), {"id": doomed}
            )
        )
    assert len(doomed_books) == 3

    payload = await run(client, "deleteAuthor", {"id": author_gid(doomed), "withBooks": True})

    assert payload["userErrors"] == []
    assert payload["author"]["databaseId"] == doomed
    assert sorted(payload["deletedBookIds"]) == sorted(book_gid(i) for i in doomed_books)
    assert await author_row(engine, doomed) is None
    assert all([await book_row(engine, book_id) is None for book_id in doomed_books])
    assert await row_counts(engine) == (1, 3)
    async with engine.connect() as connection:
        owners = set(await connection.scalars(text("SELECT author_id FROM books")))
    assert owners == {kept}


async def test_delete_author_with_books_true_and_no_books(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)

    payload = await run(client, "deleteAuthor", {"id": author_gid(author_id), "withBooks": True})

    assert payload["userErrors"] == []
    assert payload["deletedBookIds"] == []
    assert await row_counts(engine) == (0, 0)


@pytest.mark.parametrize("with_books", [False, True])
async def test_delete_author_missing_is_not_found(
    client: GraphQLClient, engine: AsyncEngine, with_books: bool
) -> None:
    await insert_authors(engine, 2, books_each=1)
    payload = await assert_refused(
        client,
        engine,
        "deleteAuthor",
        {"id": author_gid(999), "withBooks": with_books},
        [(["id"], "NOT_FOUND")],
    )
    assert payload["deletedBookIds"] == []


@pytest.mark.parametrize("bad_id", INVALID_AUTHOR_IDS)
async def test_delete_author_refuses_an_invalid_id(
    client: GraphQLClient, engine: AsyncEngine, bad_id: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client,
        engine,
        "deleteAuthor",
        {"id": bad_id, "withBooks": True},
        [(["id"], "INVALID_ID")],
    )


async def test_delete_author_twice_is_not_found_the_second_time(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    assert (await run(client, "deleteAuthor", {"id": author_gid(author_id)}))["userErrors"] == []
    await assert_refused(
        client, engine, "deleteAuthor", {"id": author_gid(author_id)}, [(["id"], "NOT_FOUND")]
    )


# --- createBook ---------------------------------------------------------------------------


async def test_create_book_trims_and_links_to_the_author(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    _, author_id = await insert_authors(engine, 2)

    payload = await run(
        client, "createBook", {"authorId": author_gid(author_id), "title": "  Things Fall Apart "}
    )

    assert payload["userErrors"] == []
    book = payload["book"]
    assert book["title"] == "Things Fall Apart"
    assert book["id"] == book_gid(book["databaseId"])
    assert book["author"] == {"id": author_gid(author_id), "name": "Author 001"}
    assert await book_row(engine, book["databaseId"]) == ("Things Fall Apart", author_id)
    assert await row_counts(engine) == (2, 1)


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("جدارية", id="arabic"),
        pytest.param("ノルウェイの森", id="japanese"),
        pytest.param("1Q84 🐑", id="emoji"),
        pytest.param("t" * 200, id="exactly-200"),
        pytest.param("ő" * 200, id="exactly-200-multibyte"),
    ],
)
async def test_create_book_round_trips_titles(
    client: GraphQLClient, engine: AsyncEngine, title: str
) -> None:
    (author_id,) = await insert_authors(engine, 1)

    payload = await run(client, "createBook", {"authorId": author_gid(author_id), "title": title})

    assert payload["userErrors"] == []
    assert payload["book"]["title"] == title
    assert await book_row(engine, payload["book"]["databaseId"]) == (title, author_id)


@pytest.mark.parametrize(
    ("title", "code"),
    [
        pytest.param("", "BLANK", id="empty"),
        pytest.param(" \t \n ", "BLANK", id="whitespace"),
        pytest.param("t" * 201, "TOO_LONG", id="201"),
        pytest.param("ő" * 201, "TOO_LONG", id="201-multibyte"),
        pytest.param("Part\u0000Two", "CONTROL_CHARACTERS", id="nul"),
        pytest.param("Ring\u0007", "CONTROL_CHARACTERS", id="bell"),
        pytest.param("Two\nLines", "CONTROL_CHARACTERS", id="newline"),
    ],
)
async def test_create_book_refuses_an_invalid_title(
    client: GraphQLClient, engine: AsyncEngine, title: str, code: str
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client,
        engine,
        "createBook",
        {"authorId": author_gid(author_id), "title": title},
        [(["title"], code)],
    )


@pytest.mark.parametrize("bad_id", INVALID_AUTHOR_IDS)
async def test_create_book_refuses_an_invalid_author_id(
    client: GraphQLClient, engine: AsyncEngine, bad_id: str
) -> None:
    await insert_authors(engine, 1, books_each=1)  # so Book 1 and Author 1 both exist
    await assert_refused(
        client,
        engine,
        "createBook",
        {"authorId": bad_id, "title": "A Title"},
        [(["authorId"], "INVALID_ID")],
    )


async def test_create_book_for_a_missing_author_is_not_found(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client,
        engine,
        "createBook",
        {"authorId": author_gid(4242), "title": "Orphan"},
        [(["authorId"], "NOT_FOUND")],
    )


async def test_create_book_reports_bad_author_id_and_bad_title_together(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await assert_refused(
        client,
        engine,
        "createBook",
        {"authorId": book_gid(1), "title": "   "},
        [(["authorId"], "INVALID_ID"), (["title"], "BLANK")],
    )


# --- updateBook ---------------------------------------------------------------------------


async def test_update_book_renames_it(client: GraphQLClient, engine: AsyncEngine) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=2)
    async with engine.connect() as connection:
        book_id, other_id = list(await connection.scalars(text("SELECT id FROM books ORDER BY id")))

    payload = await run(client, "updateBook", {"id": book_gid(book_id), "title": " Here 🌍 "})

    assert payload["userErrors"] == []
    assert payload["book"]["title"] == "Here 🌍"
    assert payload["book"]["author"]["id"] == author_gid(author_id)
    assert await book_row(engine, book_id) == ("Here 🌍", author_id)
    assert await book_row(engine, other_id) == ("Book 000-01", author_id)


async def test_update_book_without_a_title_keeps_it(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=1)
    async with engine.connect() as connection:
        book_id = await connection.scalar(text("SELECT id FROM books"))
    assert book_id is not None

    payload = await run(client, "updateBook", {"id": book_gid(book_id)})

    assert payload["userErrors"] == []
    assert payload["book"]["title"] == "Book 000-00"
    assert await book_row(engine, book_id) == ("Book 000-00", author_id)


async def test_update_book_refuses_a_null_title(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client, engine, "updateBook", {"id": book_gid(1), "title": None}, [(["title"], "BLANK")]
    )


@pytest.mark.parametrize(
    ("title", "code"),
    [
        pytest.param("", "BLANK", id="empty"),
        pytest.param("   ", "BLANK", id="whitespace"),
        pytest.param("t" * 201, "TOO_LONG", id="too-long"),
        pytest.param("a\u0000", "CONTROL_CHARACTERS", id="nul"),
    ],
)
async def test_update_book_refuses_an_invalid_title(
    client: GraphQLClient, engine: AsyncEngine, title: str, code: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client, engine, "updateBook", {"id": book_gid(1), "title": title}, [(["title"], code)]
    )


@pytest.mark.parametrize("bad_id", INVALID_BOOK_IDS)
async def test_update_book_refuses_an_invalid_id(
    client: GraphQLClient, engine: AsyncEngine, bad_id: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client, engine, "updateBook", {"id": bad_id, "title": "New"}, [(["id"], "INVALID_ID")]
    )


async def test_update_book_missing_is_not_found(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(
        client, engine, "updateBook", {"id": book_gid(77), "title": "New"}, [(["id"], "NOT_FOUND")]
    )


# --- deleteBook ---------------------------------------------------------------------------


async def test_delete_book_returns_it_and_keeps_the_rest(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=3)

    payload = await run(client, "deleteBook", {"id": book_gid(2)})

    assert payload["userErrors"] == []
    assert payload["book"]["databaseId"] == 2
    assert payload["book"]["title"] == "Book 000-01"
    assert payload["book"]["author"]["id"] == author_gid(author_id)
    assert await book_row(engine, 2) is None
    assert await row_counts(engine) == (1, 2)


async def test_delete_book_twice_is_not_found_the_second_time(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 1, books_each=2)
    assert (await run(client, "deleteBook", {"id": book_gid(1)}))["userErrors"] == []
    await assert_refused(client, engine, "deleteBook", {"id": book_gid(1)}, [(["id"], "NOT_FOUND")])


@pytest.mark.parametrize("bad_id", INVALID_BOOK_IDS)
async def test_delete_book_refuses_an_invalid_id(
    client: GraphQLClient, engine: AsyncEngine, bad_id: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    await assert_refused(client, engine, "deleteBook", {"id": bad_id}, [(["id"], "INVALID_ID")])


# --- several mutations in one document ------------------------------------------------------


async def test_later_fields_see_an_earlier_update(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    gid = author_gid(author_id)

    data = await client.execute(
        """
        mutation Rename($id: ID!) {
          before: createBook(input: {authorId: $id, title: "First"}) {
            book { author { name } }
          }
          rename: updateAuthor(input: {id: $id, name: "Renamed"}) { author { name } }
          after: createBook(input: {authorId: $id, title: "Second"}) {
            book { author { name books { totalCount edges { node { title } } } } }
          }
        }
        """,
        {"id": gid},
    )

    assert data["before"]["book"]["author"]["name"] == "Author 000"
    assert data["rename"]["author"]["name"] == "Renamed"
    author = data["after"]["book"]["author"]
    assert author["name"] == "Renamed"
    assert author["books"]["totalCount"] == 2
    assert [edge["node"]["title"] for edge in author["books"]["edges"]] == ["First", "Second"]


async def test_a_refused_mutation_does_not_undo_or_block_its_neighbours(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=1)
    gid = author_gid(author_id)

    data = await client.execute(
        """
        mutation Mixed($id: ID!) {
          first: createBook(input: {authorId: $id, title: "Kept"}) { book { title } }
          refused: deleteAuthor(input: {id: $id}) { author { name } userErrors { code } }
          blank: createBook(input: {authorId: $id, title: " "}) {
            book { title }
            userErrors { code }
          }
          last: createBook(input: {authorId: $id, title: "Also kept"}) {
            book { author { books { totalCount } } }
          }
        }
        """,
        {"id": gid},
    )

    assert data["first"]["book"]["title"] == "Kept"
    assert data["refused"] == {"author": None, "userErrors": [{"code": "HAS_BOOKS"}]}
    assert data["blank"] == {"book": None, "userErrors": [{"code": "BLANK"}]}
    assert data["last"]["book"]["author"]["books"]["totalCount"] == 3
    assert await row_counts(engine) == (1, 3)
