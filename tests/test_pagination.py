"""Keyset pagination over HTTP, for authors, books and an author's books."""

import base64
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.models import Author, Book
from api.settings import Settings
from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient
from tests.test_queries import read, refused

CONNECTION = """
  totalCount
  edges { cursor node { databaseId } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
"""
PAGE_ARGS = "first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy"


def page_query(root: str, order_enum: str, *, extra: str = "") -> str:
    variables = (
        f"$first: Int, $after: String, $last: Int, $before: String, "
        f"$orderBy: {order_enum}! = ID_ASC{extra}"
    )
    return f"query({variables}) {{ {root} }}"


Populate = Callable[[AsyncEngine, int], Awaitable[tuple[dict[str, Any], list[int]]]]


@dataclass(frozen=True)
class Source:
    """A connection under test: how to fill it with `count` rows and how to ask for a page."""

    name: str
    query: str
    path: tuple[str, ...]
    populate: Populate

    async def page(self, client: GraphQLClient, variables: dict[str, Any]) -> dict[str, Any]:
        data = await read(client, self.query, variables)
        for key in self.path:
            data = data[key]
        return data

    async def errors(
        self, client: GraphQLClient, variables: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return await refused(client, self.query, variables)


async def book_ids_by_id(engine: AsyncEngine, author_id: int | None = None) -> list[int]:
    statement = select(Book.id).order_by(Book.id)
    if author_id is not None:
        statement = statement.where(Book.author_id == author_id)
    async with engine.connect() as connection:
        return list(await connection.scalars(statement))


async def populate_authors(engine: AsyncEngine, count: int) -> tuple[dict[str, Any], list[int]]:
    return {}, (await insert_authors(engine, count, books_each=1) if count else [])


async def populate_books(engine: AsyncEngine, count: int) -> tuple[dict[str, Any], list[int]]:
    if count:
        await insert_authors(engine, count, books_each=1)
    return {}, await book_ids_by_id(engine)


async def populate_author_books(
    engine: AsyncEngine, count: int
) -> tuple[dict[str, Any], list[int]]:
    """The middle one of three authors with `count` books each: the others' books must not leak."""
    author_ids = await insert_authors(engine, 3, books_each=count)
    return {"author": author_gid(author_ids[1])}, await book_ids_by_id(engine, author_ids[1])


AUTHORS = Source(
    "authors",
    page_query(f"authors({PAGE_ARGS}) {{ {CONNECTION} }}", "AuthorOrderBy"),
    ("authors",),
    populate_authors,
)
BOOKS = Source(
    "books",
    page_query(f"books({PAGE_ARGS}) {{ {CONNECTION} }}", "BookOrderBy"),
    ("books",),
    populate_books,
)
AUTHOR_BOOKS = Source(
    "author.books",
    page_query(
        f"author(id: $author) {{ books({PAGE_ARGS}) {{ {CONNECTION} }} }}",
        "BookOrderBy",
        extra=", $author: ID!",
    ),
    ("author", "books"),
    populate_author_books,
)
SOURCES = [AUTHORS, BOOKS, AUTHOR_BOOKS]


@pytest.fixture(params=SOURCES, ids=[source.name for source in SOURCES])
def source(request: pytest.FixtureRequest) -> Source:
    chosen: Source = request.param
    return chosen


def ids(page: dict[str, Any]) -> list[int]:
    return [edge["node"]["databaseId"] for edge in page["edges"]]


def flags(page: dict[str, Any]) -> tuple[bool, bool]:
    """(hasPreviousPage, hasNextPage)"""
    return page["pageInfo"]["hasPreviousPage"], page["pageInfo"]["hasNextPage"]


def assert_cursors_bound_the_page(page: dict[str, Any]) -> None:
    cursors = [edge["cursor"] for edge in page["edges"]]
    info = page["pageInfo"]
    if cursors:
        assert (info["startCursor"], info["endCursor"]) == (cursors[0], cursors[-1])
        assert len(set(cursors)) == len(cursors)
    else:
        assert (info["startCursor"], info["endCursor"]) == (None, None)


async def walk_forward(
    source: Source, client: GraphQLClient, variables: dict[str, Any], size: int, limit: int = 50
) -> list[dict[str, Any]]:
    """Pages from the start, following endCursor while hasNextPage says there is more."""
    pages = [await source.page(client, {**variables, "first": size})]
    while flags(pages[-1])[1]:
        assert len(pages) < limit, "hasNextPage never became false"
        after = pages[-1]["pageInfo"]["endCursor"]
        pages.append(await source.page(client, {**variables, "first": size, "after": after}))
    return pages


async def walk_backward(
    source: Source, client: GraphQLClient, variables: dict[str, Any], size: int, limit: int = 50
) -> list[dict[str, Any]]:
    """Pages from the end, following startCursor while hasPreviousPage says there is more."""
    pages = [await source.page(client, {**variables, "last": size})]
    while flags(pages[-1])[0]:
        assert len(pages) < limit, "hasPreviousPage never became false"
        before = pages[-1]["pageInfo"]["startCursor"]
        pages.append(await source.page(client, {**variables, "last": size, "before": before}))
    return pages


def assert_bad_input(errors: list[dict[str, Any]], *mentions: str) -> None:
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert errors[0]["message"] != "Internal server error", errors
    for mention in mentions:
        assert mention in errors[0]["message"], errors


def tampered(cursor: str, edit: Callable[[str], str]) -> str:
    """A cursor as a client might forge it: the text inside the base64url changed by `edit`."""
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    forged = edit(text)
    assert forged != text, f"the edit left {text!r} unchanged"
    return base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")


# Walking the pages


async def test_first_page(source: Source, client: GraphQLClient, engine: AsyncEngine) -> None:
    variables, expected = await source.populate(engine, 12)

    page = await source.page(client, {**variables, "first": 5})

    assert ids(page) == expected[:5]
    assert flags(page) == (False, True)
    assert page["totalCount"] == 12
    assert_cursors_bound_the_page(page)


@pytest.mark.parametrize("count", [12, 10], ids=["partial-last-page", "full-last-page"])
async def test_walk_forward_visits_every_row_once(
    source: Source, client: GraphQLClient, engine: AsyncEngine, count: int
) -> None:
    variables, expected = await source.populate(engine, count)

    pages = await walk_forward(source, client, variables, 5)

    assert [ids(page) for page in pages] == [expected[i : i + 5] for i in range(0, count, 5)]
    assert flags(pages[0]) == (False, True)
    assert all(flags(page) == (True, True) for page in pages[1:-1])
    assert flags(pages[-1]) == (True, False)
    for page in pages:
        assert page["totalCount"] == count
        assert_cursors_bound_the_page(page)


@pytest.mark.parametrize("count", [12, 10], ids=["partial-first-page", "full-first-page"])
async def test_walk_backward_visits_every_row_once(
    source: Source, client: GraphQLClient, engine: AsyncEngine, count: int
) -> None:
    variables, expected = await source.populate(engine, count)

    pages = await walk_backward(source, client, variables, 5)

    assert [ids(page) for page in pages] == [
        expected[max(end - 5, 0) : end] for end in range(count, 0, -5)
    ]
    assert flags(pages[0]) == (True, False)
    assert all(flags(page) == (True, True) for page in pages[1:-1])
    assert flags(pages[-1]) == (False, True)
    for page in pages:
        assert page["totalCount"] == count
        assert_cursors_bound_the_page(page)


async def test_turning_back_from_a_middle_page(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, expected = await source.populate(engine, 15)
    first, second = (await walk_forward(source, client, variables, 5))[:2]

    back = await source.page(
        client, {**variables, "last": 5, "before": second["pageInfo"]["startCursor"]}
    )
    onward = await source.page(
        client, {**variables, "last": 2, "before": second["pageInfo"]["endCursor"]}
    )

    assert ids(back) == ids(first) == expected[:5]
    assert flags(back) == (False, True)
    assert ids(onward) == expected[7:9]
    assert flags(onward) == (True, True)


async def test_first_with_before_stops_at_the_cursor(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, expected = await source.populate(engine, 8)
    page = await source.page(client, {**variables, "first": 8})
    sixth = page["edges"][5]["cursor"]

    bounded = await source.page(client, {**variables, "first": 10, "before": sixth})

    assert ids(bounded) == expected[:5]
    assert flags(bounded) == (False, False)


async def test_last_with_after_stops_at_the_cursor(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, expected = await source.populate(engine, 8)
    page = await source.page(client, {**variables, "first": 8})
    third = page["edges"][2]["cursor"]

    bounded = await source.page(client, {**variables, "last": 10, "after": third})

    assert ids(bounded) == expected[3:]
    assert flags(bounded) == (False, False)


async def test_between_two_cursors(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, expected = await source.populate(engine, 8)
    cursors = [edge["cursor"] for edge in (await source.page(client, {**variables}))["edges"]]
    between = {**variables, "after": cursors[1], "before": cursors[6]}  # rows 2 to 5

    head = await source.page(client, {**between, "first": 3})
    tail = await source.page(client, {**between, "last": 3})
    whole = await source.page(client, {**between, "first": 8})

    assert (ids(head), flags(head)) == (expected[2:5], (True, True))
    assert (ids(tail), flags(tail)) == (expected[3:6], (True, True))
    assert ids(whole) == expected[2:6]
    assert flags(whole)[1] is False


async def test_empty_connection(source: Source, client: GraphQLClient, engine: AsyncEngine) -> None:
    variables, expected = await source.populate(engine, 0)
    assert expected == []

    for arguments in ({}, {"first": 5}, {"last": 5}):
        page = await source.page(client, {**variables, **arguments})
        assert page["edges"] == []
        assert page["totalCount"] == 0
        assert page["pageInfo"] == {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        }


async def test_after_the_last_cursor_is_an_empty_page(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, _ = await source.populate(engine, 4)
    last = await source.page(client, {**variables, "last": 1})

    page = await source.page(
        client, {**variables, "first": 5, "after": last["pageInfo"]["endCursor"]}
    )

    assert page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert page["totalCount"] == 4


async def test_before_the_first_cursor_is_an_empty_page(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, _ = await source.populate(engine, 4)
    first = await source.page(client, {**variables, "first": 1})

    page = await source.page(
        client, {**variables, "last": 5, "before": first["pageInfo"]["startCursor"]}
    )

    assert page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


@pytest.mark.parametrize("count", [0, 3])
async def test_zero_items(
    source: Source, client: GraphQLClient, engine: AsyncEngine, count: int
) -> None:
    variables, _ = await source.populate(engine, count)

    first = await source.page(client, {**variables, "first": 0})
    last = await source.page(client, {**variables, "last": 0})

    for page in (first, last):
        assert page["edges"] == []
        assert page["totalCount"] == count
        assert_cursors_bound_the_page(page)
    assert flags(first) == (False, count > 0)
    assert flags(last) == (count > 0, False)


async def test_default_page_size(
    source: Source, client: GraphQLClient, engine: AsyncEngine, settings: Settings
) -> None:
    size = settings.default_page_size
    variables, expected = await source.populate(engine, size + 3)

    forward = await source.page(client, variables)
    onward = await source.page(client, {**variables, "after": forward["pageInfo"]["endCursor"]})
    backward = await source.page(client, {**variables, "before": onward["pageInfo"]["endCursor"]})

    assert (ids(forward), flags(forward)) == (expected[:size], (False, True))
    assert (ids(onward), flags(onward)) == (expected[size:], (True, False))
    assert (ids(backward), flags(backward)) == (expected[2 : size + 2], (True, True))


async def test_largest_page(
    source: Source, client: GraphQLClient, engine: AsyncEngine, settings: Settings
) -> None:
    size = settings.max_page_size
    variables, expected = await source.populate(engine, size + 1)

    first = await source.page(client, {**variables, "first": size})
    last = await source.page(client, {**variables, "last": size})

    assert (ids(first), flags(first)) == (expected[:size], (False, True))
    assert (ids(last), flags(last)) == (expected[-size:], (True, False))


# Arguments refused


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_page_larger_than_the_cap_is_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine, settings: Settings, argument: str
) -> None:
    variables, _ = await source.populate(engine, 2)

    errors = await source.errors(client, {**variables, argument: settings.max_page_size + 1})

    assert_bad_input(errors, argument, str(settings.max_page_size))


async def test_first_and_last_together_are_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, _ = await source.populate(engine, 2)

    errors = await source.errors(client, {**variables, "first": 1, "last": 1})

    assert_bad_input(errors, "first", "last")


@pytest.mark.parametrize("argument", ["first", "last"])
async def test_negative_page_size_is_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine, argument: str
) -> None:
    variables, _ = await source.populate(engine, 2)

    errors = await source.errors(client, {**variables, argument: -1})

    assert_bad_input(errors, argument)


GARBAGE_CURSORS = {
    "not-base64": "***",
    "empty": "",
    "not-json": base64.urlsafe_b64encode(b"hello world").decode(),
    "json-object": base64.urlsafe_b64encode(b'{"a": 1, "b": 2, "c": 3}').decode(),
    "too-short": base64.urlsafe_b64encode(b'["ID_ASC", 1]').decode(),
    "wrong-types": base64.urlsafe_b64encode(b'["ID_ASC", "one", true]').decode(),
    "binary": base64.urlsafe_b64encode(bytes(range(250, 256))).decode(),
}


@pytest.mark.parametrize("argument", ["after", "before"])
@pytest.mark.parametrize("cursor", GARBAGE_CURSORS.values(), ids=GARBAGE_CURSORS.keys())
async def test_garbage_cursor_is_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine, argument: str, cursor: str
) -> None:
    variables, _ = await source.populate(engine, 2)

    errors = await source.errors(client, {**variables, "first": 1, argument: cursor})

    assert_bad_input(errors, argument, "cursor")


async def test_cursor_of_another_ordering_is_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, _ = await source.populate(engine, 3)
    page = await source.page(client, {**variables, "first": 2, "orderBy": "ID_DESC"})

    errors = await source.errors(
        client, {**variables, "first": 2, "after": page["pageInfo"]["endCursor"]}
    )

    assert_bad_input(errors, "after")


OUT_OF_RANGE = [2**31, -(2**31) - 1, -(10**17) + 1, 10**19 - 1]


def every_number(value: int) -> Callable[[str], str]:
    return lambda text: re.sub(r"\d+", str(value), text)


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_cursor_with_numbers_out_of_range_is_rejected(
    source: Source, client: GraphQLClient, engine: AsyncEngine, value: int
) -> None:
    """A forged cursor is the client's mistake: no database error may surface from it."""
    variables, _ = await source.populate(engine, 3)
    page = await source.page(client, {**variables, "first": 1})
    cursor = tampered(page["pageInfo"]["endCursor"], every_number(value))

    errors = await source.errors(client, {**variables, "first": 1, "after": cursor})

    assert_bad_input(errors, "after")


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("order_by", ["NAME_ASC", "CREATED_AT_ASC", "CREATED_AT_DESC"])
async def test_cursor_of_a_sort_key_with_numbers_out_of_range_is_rejected(
    client: GraphQLClient, engine: AsyncEngine, order_by: str, value: int
) -> None:
    await insert_authors(engine, 3)
    variables = {"orderBy": order_by, "first": 1}
    page = await AUTHORS.page(client, variables)
    cursor = tampered(page["pageInfo"]["endCursor"], every_number(value))

    errors = await AUTHORS.errors(client, {**variables, "after": cursor})

    assert_bad_input(errors, "after")


async def test_cursor_with_a_nul_character_is_rejected(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Postgres text cannot hold NUL; such a cursor must be refused, not sent to the database."""
    await insert_authors(engine, 3)
    variables = {"orderBy": "NAME_ASC", "first": 1}
    page = await AUTHORS.page(client, variables)
    async with engine.connect() as connection:
        name = await connection.scalar(select(Author.name).where(Author.id == ids(page)[0]))
    assert name is not None
    cursor = tampered(page["pageInfo"]["endCursor"], lambda text: text.replace(name, "A\x00"))

    errors = await AUTHORS.errors(client, {**variables, "after": cursor})

    assert_bad_input(errors, "after")


# Cursors are keys, not offsets


async def insert_authors_with_ids(engine: AsyncEngine, author_ids: list[int], prefix: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(Author),
            [{"id": author_id, "name": f"{prefix} {author_id:03d}"} for author_id in author_ids],
        )


async def insert_authors_sorting_first(engine: AsyncEngine, order_by: str) -> None:
    """Three authors who sort before every author already there, in `order_by`."""
    if order_by == "ID_ASC":  # ids 1-3 were freed by the test's setup
        await insert_authors_with_ids(engine, [1, 2, 3], "Late")
    elif order_by == "NAME_ASC":
        await insert_authors(engine, 3, name_prefix="Aaron")
    else:  # ID_DESC: new ids are the highest
        await insert_authors(engine, 3, name_prefix="Late")


@pytest.mark.parametrize("order_by", ["ID_ASC", "NAME_ASC", "ID_DESC"])
async def test_cursor_survives_inserts_ahead_of_it(
    client: GraphQLClient, engine: AsyncEngine, order_by: str
) -> None:
    await insert_authors(engine, 3, name_prefix="Freed")
    author_ids = await insert_authors(engine, 17)
    async with engine.begin() as connection:
        await connection.execute(delete(Author).where(Author.name.startswith("Freed")))
    expected = sorted(author_ids, reverse=order_by == "ID_DESC")  # names sort like ids
    variables = {"orderBy": order_by}
    first = await AUTHORS.page(client, {**variables, "first": 6})

    await insert_authors_sorting_first(engine, order_by)
    rest = await walk_forward(
        AUTHORS, client, {**variables, "after": first["pageInfo"]["endCursor"]}, 6
    )

    seen = ids(first) + [row for page in rest for row in ids(page)]
    assert seen == expected
    assert rest[0]["totalCount"] == len(expected) + 3  # the new authors are there, ahead
    assert flags(rest[0]) == (True, True)


async def test_cursor_survives_inserts_behind_it(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, 10)
    first = await AUTHORS.page(client, {"first": 4})

    added = await insert_authors(engine, 3, name_prefix="Late")
    rest = await walk_forward(AUTHORS, client, {"after": first["pageInfo"]["endCursor"]}, 4)

    assert ids(first) + [row for page in rest for row in ids(page)] == author_ids + added


@pytest.mark.parametrize("source", [BOOKS, AUTHOR_BOOKS], ids=lambda source: source.name)
async def test_book_cursor_survives_inserts_ahead_of_it(
    source: Source, client: GraphQLClient, engine: AsyncEngine
) -> None:
    variables, expected = await source.populate(engine, 11)
    variables = {**variables, "orderBy": "ID_DESC"}
    first = await source.page(client, {**variables, "first": 4})

    async with engine.begin() as connection:  # a new book for every author: the highest ids
        author_ids = list(await connection.scalars(select(Author.id)))
        await connection.execute(
            insert(Book), [{"author_id": author_id, "title": "Late"} for author_id in author_ids]
        )
    rest = await walk_forward(
        source, client, {**variables, "after": first["pageInfo"]["endCursor"]}, 4
    )

    assert ids(first) + [row for page in rest for row in ids(page)] == expected[::-1]


# Orderings with ties and filters


@pytest.mark.parametrize("order_by", ["NAME_ASC", "NAME_DESC", "CREATED_AT_ASC", "CREATED_AT_DESC"])
async def test_walk_through_ties_in_the_sort_key(
    client: GraphQLClient, engine: AsyncEngine, order_by: str
) -> None:
    for _ in range(3):  # each name and creation time three times over
        await insert_authors(engine, 4)
    column = Author.name if order_by.startswith("NAME") else Author.created_at
    async with engine.connect() as connection:
        rows = (await connection.execute(select(column, Author.id))).all()
    expected = [row[1] for row in sorted(rows, reverse=order_by.endswith("DESC"))]
    variables = {"orderBy": order_by}

    forward = await walk_forward(AUTHORS, client, variables, 5)
    backward = await walk_backward(AUTHORS, client, variables, 5)

    assert [row for page in forward for row in ids(page)] == expected
    assert [row for page in reversed(backward) for row in ids(page)] == expected


async def test_walk_a_filtered_connection(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 14, countries=("Japan", "Peru", "Nigeria"))
    async with engine.connect() as connection:
        expected = list(
            await connection.scalars(
                select(Author.id).where(Author.country == "Peru").order_by(Author.id)
            )
        )
    query = page_query(
        f"authors({PAGE_ARGS}, filter: {{country: $country}}) {{ {CONNECTION} }}",
        "AuthorOrderBy",
        extra=", $country: String",
    )
    filtered = Source("authors-in-peru", query, ("authors",), populate_authors)

    forward = await walk_forward(filtered, client, {"country": "peru"}, 2)
    backward = await walk_backward(filtered, client, {"country": "peru"}, 2)

    assert [row for page in forward for row in ids(page)] == expected
    assert [row for page in reversed(backward) for row in ids(page)] == expected
    assert {page["totalCount"] for page in forward + backward} == {len(expected)}
