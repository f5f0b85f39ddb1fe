"""Text that hides or reorders what it says: refused in every field, by every writing path."""

from typing import Any

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.invisible import PRESENTATION_SELECTORS, ZWJ, ZWNJ, first_invisible
from api.catalog.problems import InvalidValue, ProblemCode
from api.catalog.text import clean_text
from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient

# The issue's examples, and one of each kind the rule is about.
SPOOFS = {
    "right-to-left override": "abc\u202egpj.exe",
    "left-to-right isolate": "\u2066Mallory\u2069",
    "right-to-left mark": "Mal\u200flory",
    "arabic letter mark": "Mal\u061clory",
    "zero-width space": "Mal\u200blory",
    "zero-width joiner between letters": "Mal\u200dlory",
    "word joiner": "Mal\u2060lory",
    "byte order mark": "\ufeffMallory",
    "hangul filler": "\u3164",
    "halfwidth hangul filler": "Mal\uffa0lory",
    "hangul choseong filler": "\u115fMallory",
    "soft hyphen": "Pay\u00adPal",
    "variation selector after a letter": "Mal\ufe0flory",
    "mongolian vowel separator": "Mal\u180elory",
    "tag characters": "Mallory\U000e0069\U000e0067\U000e006e",
    "interlinear annotation": "Mal\ufff9hidden\ufffalory\ufffb",
}
ISSUE_EXAMPLES = {
    name: SPOOFS[name] for name in ("right-to-left override", "zero-width space", "hangul filler")
}
# Ignorable characters doing their job: spelling or emoji, kept as written.
KEPT = {
    "persian zwnj": "\u06a9\u062a\u0627\u0628\u200c\u0647\u0627\u06cc",  # books (plural)
    "hindi virama and zwj": "क्\u200dष",
    "emoji zwj sequence": "Poet 👩🏽\u200d💻",
    "emoji presentation": "Love ❤\ufe0f",
    "keycap": "Top 1\ufe0f\u20e3",
}

AUTHOR_PAYLOAD = "author { name bio country } userErrors { field message code }"
CREATE_AUTHOR = (
    "mutation Create($input: CreateAuthorInput!) "
    f"{{ createAuthor(input: $input) {{ {AUTHOR_PAYLOAD} }} }}"
)
UPDATE_AUTHOR = (
    "mutation Update($input: UpdateAuthorInput!) "
    f"{{ updateAuthor(input: $input) {{ {AUTHOR_PAYLOAD} }} }}"
)
CREATE_BOOK = (
    "mutation Book($input: CreateBookInput!) "
    "{ createBook(input: $input) { book { title } userErrors { field message code } } }"
)
SEED = (
    "mutation Seed($input: SeedCatalogInput!) "
    "{ seedCatalog(input: $input) { authors { name } userErrors { field message code } } }"
)

Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


async def rows(engine: AsyncEngine) -> Rows:
    async with engine.connect() as connection:
        authors = await connection.execute(
            text("SELECT id, name, bio, country FROM authors ORDER BY id")
        )
        books = await connection.execute(text("SELECT id, title, author_id FROM books ORDER BY id"))
        return [tuple(row) for row in authors], [tuple(row) for row in books]


def writes(value: str) -> dict[str, tuple[str, dict[str, Any], str, list[str]]]:
    """Each writing mutation with `value` in one text field: document, input, field, path."""
    author = author_gid(1)
    return {
        "createAuthor name": (CREATE_AUTHOR, {"name": value}, "createAuthor", ["name"]),
        "createAuthor country": (
            CREATE_AUTHOR,
            {"name": "Someone", "country": value},
            "createAuthor",
            ["country"],
        ),
        "createAuthor bio": (
            CREATE_AUTHOR,
            {"name": "Someone", "bio": f"First line\n{value}"},
            "createAuthor",
            ["bio"],
        ),
        "updateAuthor name": (
            UPDATE_AUTHOR,
            {"id": author, "name": value},
            "updateAuthor",
            ["name"],
        ),
        "createBook title": (
            CREATE_BOOK,
            {"authorId": author, "title": value},
            "createBook",
            ["title"],
        ),
        "seedCatalog name": (
            SEED,
            {"authors": [{"name": value}]},
            "seedCatalog",
            ["authors", "0", "name"],
        ),
        "seedCatalog title": (
            SEED,
            {"authors": [{"name": "Someone", "books": [{"title": value}]}]},
            "seedCatalog",
            ["authors", "0", "books", "0", "title"],
        ),
    }


WRITES = list(writes(""))


@pytest.fixture(params=["planner", "resolvers"])
def path(
    request: pytest.FixtureRequest, client: GraphQLClient, resolver_client: GraphQLClient
) -> GraphQLClient:
    """Both GraphQL paths: the planner serves a createBook it has seen once, resolvers never."""
    return client if request.param == "planner" else resolver_client


async def assert_refused(path: GraphQLClient, engine: AsyncEngine, write: str, spoof: str) -> None:
    """Refused with INVISIBLE_CHARACTERS, twice alike (the planner has seen it once), no write."""
    await insert_authors(engine, 1)
    before = await rows(engine)
    document, input, mutation, field = writes(spoof)[write]
    answers = [await path.execute(document, {"input": input}) for _ in range(2)]

    for answer in answers:
        payload = answer[mutation]
        (error,) = payload["userErrors"]
        assert error["field"] == field, payload
        assert error["code"] == "INVISIBLE_CHARACTERS", payload
        assert "U+" in error["message"], payload
        assert payload.get("author") is None
        assert payload.get("book") is None
        assert payload.get("authors") in (None, [])
    assert answers[0] == answers[1]
    assert await rows(engine) == before


@pytest.mark.parametrize("spoof", ISSUE_EXAMPLES.values(), ids=list(ISSUE_EXAMPLES))
@pytest.mark.parametrize("write", WRITES)
async def test_every_write_refuses_invisible_characters(
    path: GraphQLClient, engine: AsyncEngine, write: str, spoof: str
) -> None:
    await assert_refused(path, engine, write, spoof)


@pytest.mark.parametrize("spoof", SPOOFS.values(), ids=list(SPOOFS))
async def test_every_kind_of_invisible_character_is_refused(
    path: GraphQLClient, engine: AsyncEngine, spoof: str
) -> None:
    """createBook, since the planner writes it too; the rule is shared by every field."""
    await assert_refused(path, engine, "createBook title", spoof)


@pytest.mark.parametrize("kept", KEPT.values(), ids=list(KEPT))
@pytest.mark.parametrize("write", ["createAuthor name", "createBook title", "seedCatalog title"])
async def test_ignorable_characters_doing_their_job_are_kept(
    path: GraphQLClient, engine: AsyncEngine, write: str, kept: str
) -> None:
    await insert_authors(engine, 1)
    document, input, mutation, _ = writes(kept)[write]
    payload = (await path.execute(document, {"input": input}))[mutation]

    assert payload["userErrors"] == []
    authors, books = await rows(engine)
    stored = {row[1] for row in authors} | {row[1] for row in books}
    assert kept in stored


async def test_the_message_names_the_character_and_where_it_is(client: GraphQLClient) -> None:
    payload = (await client.execute(CREATE_AUTHOR, {"input": {"name": "abc\u202egpj.exe"}}))[
        "createAuthor"
    ]
    assert payload["userErrors"] == [
        {
            "field": ["name"],
            "message": "name must not contain invisible or text-direction characters "
            "(U+202E at position 4)",
            "code": "INVISIBLE_CHARACTERS",
        }
    ]


@pytest.mark.parametrize("spoof", ISSUE_EXAMPLES.values(), ids=list(ISSUE_EXAMPLES))
async def test_filters_with_invisible_characters_answer_without_failing(
    path: GraphQLClient, engine: AsyncEngine, spoof: str
) -> None:
    """Filters stay lenient: such text matches nothing stored, and says so (after a word,
    so that a contains filter has the letters it needs)."""
    await insert_authors(engine, 2, books_each=1)
    query = (
        "query($s: String) { authors(filter: {nameContains: $s}) { totalCount } "
        "books(filter: {titleContains: $s}) { totalCount } }"
    )
    for _ in range(2):
        data = await path.execute(query, {"s": f"Author {spoof}"})
        assert data == {"authors": {"totalCount": 0}, "books": {"totalCount": 0}}


# --- the rule itself, over generated text ------------------------------------------------

_IGNORABLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\uFFF9-\uFFFB]")
# Every ignorable character that no context makes acceptable, as a list to draw from.
ALWAYS_REFUSED = [
    chr(point)
    for point in range(0x110000)
    if _IGNORABLE.match(chr(point)) and chr(point) not in {ZWNJ, ZWJ, *PRESENTATION_SELECTORS}
]
VISIBLE_TEXT = st.text(
    st.characters(categories=["L", "M", "N", "P", "S", "Zs"]).filter(
        lambda char: _IGNORABLE.match(char) is None
    ),
    max_size=40,
)


def problems_of(value: str) -> list[str]:
    try:
        clean_text(value, field=("name",), max_length=1000)
    except InvalidValue as refused:
        return [refused.problem.code]
    return []


@given(before=VISIBLE_TEXT, hidden=st.sampled_from(ALWAYS_REFUSED), after=VISIBLE_TEXT)
def test_any_refused_character_anywhere_is_refused(before: str, hidden: str, after: str) -> None:
    value = f"{before}x{hidden}{after}"
    assert problems_of(value) == [ProblemCode.INVISIBLE_CHARACTERS]
    assert first_invisible(value) == len(before) + 1


@given(value=VISIBLE_TEXT.filter(str.strip))
def test_text_without_ignorable_characters_is_never_refused_as_invisible(value: str) -> None:
    assert problems_of(value) == []
