"""Every read query over HTTP: connections, lookups by id, filters and orderings."""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.relay import to_base64

from api.catalog.describe import Cardinality, Entity, Field, Kind, Ordering, Relation
from api.catalog.entities import ENTITIES
from api.db.models import Author, Book
from tests.factories import EPOCH, author_gid, book_gid, insert_authors
from tests.graphql_client import GraphQLClient

AUTHOR_FIELDS = "id databaseId name bio country createdAt"
BOOK_FIELDS = "id databaseId title createdAt author { id databaseId }"

AUTHORS = f"""
query($first: Int, $filter: AuthorFilter, $orderBy: AuthorOrderBy! = ID_ASC) {{
  authors(first: $first, filter: $filter, orderBy: $orderBy) {{
    totalCount
    edges {{ cursor node {{ {AUTHOR_FIELDS} }} }}
  }}
}}
"""

BOOKS = f"""
query($first: Int, $filter: BookFilter, $orderBy: BookOrderBy! = ID_ASC) {{
  books(first: $first, filter: $filter, orderBy: $orderBy) {{
    totalCount
    edges {{ cursor node {{ {BOOK_FIELDS} }} }}
  }}
}}
"""

AUTHOR_BOOKS = """
query($id: ID!, $orderBy: BookOrderBy! = ID_ASC) {
  author(id: $id) { books(first: 100, orderBy: $orderBy) { edges { node { databaseId } } } }
}
"""

AUTHOR_BY_ID = f"query($id: ID!) {{ author(id: $id) {{ {AUTHOR_FIELDS} }} }}"
BOOK_BY_ID = f"query($id: ID!) {{ book(id: $id) {{ {BOOK_FIELDS} }} }}"
NODE_BY_ID = """
query($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Author { databaseId name country }
    ... on Book { databaseId title author { databaseId } }
  }
}
"""


@dataclass(frozen=True)
class Stored:
    """A row as the test wrote it: what the API's answers are checked against."""

    id: int
    text: str  # an author's name or a book's title
    created_at: datetime


async def insert_author(
    engine: AsyncEngine, name: str, *, country: str | None = None, minutes: int = 0
) -> Stored:
    created_at = EPOCH + timedelta(minutes=minutes)
    async with engine.begin() as connection:
        author_id = await connection.scalar(
            insert(Author)
            .values(name=name, country=country, created_at=created_at)
            .returning(Author.id)
        )
    assert author_id is not None
    return Stored(author_id, name, created_at)


async def insert_book(
    engine: AsyncEngine, author_id: int, title: str, *, minutes: int = 0
) -> Stored:
    created_at = EPOCH + timedelta(minutes=minutes)
    async with engine.begin() as connection:
        book_id = await connection.scalar(
            insert(Book)
            .values(author_id=author_id, title=title, created_at=created_at)
            .returning(Book.id)
        )
    assert book_id is not None
    return Stored(book_id, title, created_at)


async def read(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The data of a query asked twice, which must not change when asked again.

    The text is new to the server, so the first answer comes the ordinary way; the second
    may come from the query planner, which the first one taught.
    """
    fresh = f"{query}\n# {uuid4().hex}"
    first = await client.execute(fresh, variables)
    assert await client.execute(fresh, variables) == first
    return first


async def refused(
    client: GraphQLClient, query: str, variables: dict[str, Any]
) -> list[dict[str, Any]]:
    """The errors of a query asked twice (the ordinary way, then perhaps planned): the same."""
    fresh = f"{query}\n# {uuid4().hex}"
    first, again = [await client.errors(fresh, variables) for _ in range(2)]
    assert [without_request_id(error) for error in again] == [
        without_request_id(error) for error in first
    ]
    return first


def without_request_id(error: dict[str, Any]) -> dict[str, Any]:
    extensions = {k: v for k, v in error.get("extensions", {}).items() if k != "requestId"}
    return {**error, "extensions": extensions}


def node_ids(connection: dict[str, Any]) -> list[int]:
    return [edge["node"]["databaseId"] for edge in connection["edges"]]


def assert_bad_input(errors: list[dict[str, Any]], *, path: str, mentions: str) -> None:
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert errors[0]["path"] == [path], errors
    assert mentions in errors[0]["message"], errors


async def enum_values(client: GraphQLClient, name: str) -> set[str]:
    data = await read(
        client,
        "query($name: String!) { __type(name: $name) { enumValues { name } } }",
        {"name": name},
    )
    return {value["name"] for value in data["__type"]["enumValues"]}


# Connections


async def test_authors_connection_returns_every_author_with_its_fields(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 4, countries=("Nigeria", None))
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                select(
                    Author.id, Author.name, Author.bio, Author.country, Author.created_at
                ).order_by(Author.id)
            )
        ).all()

    connection_data = (await read(client, AUTHORS, {"first": 10}))["authors"]

    assert connection_data["totalCount"] == len(stored)
    nodes = [edge["node"] for edge in connection_data["edges"]]
    assert [(n["id"], n["databaseId"], n["name"], n["bio"], n["country"]) for n in nodes] == [
        (author_gid(r.id), r.id, r.name, r.bio, r.country) for r in stored
    ]
    assert [datetime.fromisoformat(n["createdAt"]) for n in nodes] == [r.created_at for r in stored]
    cursors = [edge["cursor"] for edge in connection_data["edges"]]
    assert all(isinstance(cursor, str) and cursor for cursor in cursors)
    assert len(set(cursors)) == len(cursors)


async def test_books_connection_returns_every_book_with_its_author(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 3, books_each=2)
    async with engine.connect() as connection:
        stored = (
            await connection.execute(
                select(Book.id, Book.title, Book.author_id, Book.created_at).order_by(Book.id)
            )
        ).all()

    connection_data = (await read(client, BOOKS, {"first": 10}))["books"]

    assert connection_data["totalCount"] == len(stored) == 6
    nodes = [edge["node"] for edge in connection_data["edges"]]
    assert [(n["id"], n["databaseId"], n["title"]) for n in nodes] == [
        (book_gid(r.id), r.id, r.title) for r in stored
    ]
    assert [n["author"] for n in nodes] == [
        {"id": author_gid(r.author_id), "databaseId": r.author_id} for r in stored
    ]
    assert [datetime.fromisoformat(n["createdAt"]) for n in nodes] == [r.created_at for r in stored]
    cursors = [edge["cursor"] for edge in connection_data["edges"]]
    assert all(isinstance(cursor, str) and cursor for cursor in cursors)
    assert len(set(cursors)) == len(cursors)


async def test_total_count_counts_beyond_the_page(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 7, books_each=2)

    authors = (await read(client, AUTHORS, {"first": 2}))["authors"]
    books = (await read(client, BOOKS, {"first": 3}))["books"]

    assert (len(authors["edges"]), authors["totalCount"]) == (2, 7)
    assert (len(books["edges"]), books["totalCount"]) == (3, 14)


async def test_author_books_is_a_connection_of_its_own_per_author(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    book_counts = [4, 0, 1, 2]
    author_ids = [
        (await insert_authors(engine, 1, books_each=count, name_prefix=f"Writer{index}"))[0]
        for index, count in enumerate(book_counts)
    ]
    async with engine.connect() as connection:
        rows = (await connection.execute(select(Book.id, Book.author_id).order_by(Book.id))).all()
    books_of = {
        author_id: [r.id for r in rows if r.author_id == author_id] for author_id in author_ids
    }

    data = await read(
        client,
        """
        {
          authors(first: 10) {
            edges { node { databaseId
              head: books(first: 2) { ...page }
              tail: books(last: 2) { ...page }
            } }
          }
        }
        fragment page on BookConnection {
          totalCount
          edges { cursor node { databaseId author { databaseId } } }
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        }
        """,
    )

    nodes = [edge["node"] for edge in data["authors"]["edges"]]
    assert [node["databaseId"] for node in nodes] == author_ids
    for node in nodes:
        own = books_of[node["databaseId"]]
        for alias, expected in (("head", own[:2]), ("tail", own[-2:])):
            page = node[alias]
            assert page["totalCount"] == len(own)
            assert node_ids(page) == expected
            assert {edge["node"]["author"]["databaseId"] for edge in page["edges"]} <= {
                node["databaseId"]
            }
            cursors = [edge["cursor"] for edge in page["edges"]]
            info = page["pageInfo"]
            assert (info["startCursor"], info["endCursor"]) == (
                (cursors[0], cursors[-1]) if cursors else (None, None)
            )
        assert node["head"]["pageInfo"]["hasNextPage"] == (len(own) > 2)
        assert node["head"]["pageInfo"]["hasPreviousPage"] is False
        assert node["tail"]["pageInfo"]["hasPreviousPage"] == (len(own) > 2)
        assert node["tail"]["pageInfo"]["hasNextPage"] is False


async def test_created_at_keeps_its_precision_and_offset(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    moments = [EPOCH.replace(microsecond=micros) for micros in (0, 123450, 500000, 999999)]
    async with engine.begin() as connection:
        for moment in moments:
            await connection.execute(insert(Author).values(name="Timed", created_at=moment))
        now_id = await connection.scalar(  # created_at from the server's default
            insert(Author).values(name="Now").returning(Author.id)
        )
        await connection.execute(insert(Book).values(author_id=now_id, title="Dated"))
        stored = list(await connection.scalars(select(Author.created_at).order_by(Author.id)))
        book_created = await connection.scalar(select(Book.created_at))

    data = await read(
        client,
        "{ authors { edges { node { createdAt books { edges { node { createdAt } } } } } } }",
    )

    nodes = [edge["node"] for edge in data["authors"]["edges"]]
    created = [datetime.fromisoformat(node["createdAt"]) for node in nodes]
    assert created == stored
    assert created[:4] == moments
    assert all(moment.utcoffset() is not None for moment in created)
    [book] = [edge["node"] for node in nodes for edge in node["books"]["edges"]]
    assert datetime.fromisoformat(book["createdAt"]) == book_created


# Lookups by id


async def test_author_by_id(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 2)
    wanted = await insert_author(engine, "Chinua", country="Nigeria", minutes=42)

    author = (await read(client, AUTHOR_BY_ID, {"id": author_gid(wanted.id)}))["author"]

    assert author["id"] == author_gid(wanted.id)
    assert author["databaseId"] == wanted.id
    assert (author["name"], author["country"], author["bio"]) == ("Chinua", "Nigeria", None)
    assert datetime.fromisoformat(author["createdAt"]) == wanted.created_at


async def test_book_by_id(client: GraphQLClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 2, books_each=2)
    writer = await insert_author(engine, "Chinua")
    wanted = await insert_book(engine, writer.id, "Arrow of God", minutes=7)

    book = (await read(client, BOOK_BY_ID, {"id": book_gid(wanted.id)}))["book"]

    assert book["id"] == book_gid(wanted.id)
    assert book["databaseId"] == wanted.id
    assert book["title"] == "Arrow of God"
    assert datetime.fromisoformat(book["createdAt"]) == wanted.created_at
    assert book["author"] == {"id": author_gid(writer.id), "databaseId": writer.id}


async def test_node_resolves_authors_and_books_with_inline_fragments(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    writer = await insert_author(engine, "Yoko", country="Japan")
    book = await insert_book(engine, writer.id, "Kitchen")

    as_author = (await read(client, NODE_BY_ID, {"id": author_gid(writer.id)}))["node"]
    as_book = (await read(client, NODE_BY_ID, {"id": book_gid(book.id)}))["node"]

    assert as_author == {
        "__typename": "Author",
        "id": author_gid(writer.id),
        "databaseId": writer.id,
        "name": "Yoko",
        "country": "Japan",
    }
    assert as_book == {
        "__typename": "Book",
        "id": book_gid(book.id),
        "databaseId": book.id,
        "title": "Kitchen",
        "author": {"databaseId": writer.id},
    }


@pytest.mark.parametrize(
    ("query", "field", "global_id"),
    [
        (AUTHOR_BY_ID, "author", author_gid(999)),
        (BOOK_BY_ID, "book", book_gid(999)),
        (NODE_BY_ID, "node", author_gid(999)),
        (NODE_BY_ID, "node", book_gid(999)),
    ],
    ids=["author", "book", "node-author", "node-book"],
)
async def test_unknown_id_is_null(
    client: GraphQLClient, engine: AsyncEngine, query: str, field: str, global_id: str
) -> None:
    await insert_authors(engine, 3, books_each=3)  # 9 books: 999 is neither an author nor a book

    assert (await read(client, query, {"id": global_id}))[field] is None


def malformed_ids(type_name: str) -> list[Any]:
    """Ids that name no row of `type_name` and never could."""
    raw_base64 = base64.b64encode(f"{type_name}1".encode()).decode()
    return [
        pytest.param("not an id!", id="not-base64"),
        pytest.param("", id="empty"),
        pytest.param(raw_base64, id="no-separator"),
        pytest.param(to_base64(type_name, "abc"), id="not-numeric"),
        pytest.param(to_base64(type_name, ""), id="no-key"),
        pytest.param(to_base64(type_name, 0), id="zero"),
        pytest.param(to_base64(type_name, -1), id="negative"),
        pytest.param(to_base64(type_name, 2**31), id="beyond-int4"),
    ]


@pytest.mark.parametrize("value", malformed_ids("Author"))
async def test_author_rejects_malformed_id(client: GraphQLClient, value: str) -> None:
    errors = await refused(client, AUTHOR_BY_ID, {"id": value})

    assert_bad_input(errors, path="author", mentions="id")


@pytest.mark.parametrize("value", malformed_ids("Book"))
async def test_book_rejects_malformed_id(client: GraphQLClient, value: str) -> None:
    errors = await refused(client, BOOK_BY_ID, {"id": value})

    assert_bad_input(errors, path="book", mentions="id")


async def test_lookups_reject_ids_of_the_other_type(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    [author_id] = await insert_authors(engine, 1, books_each=1)
    async with engine.connect() as connection:
        book_id = await connection.scalar(select(Book.id))
    assert book_id is not None

    book_as_author = await refused(client, AUTHOR_BY_ID, {"id": book_gid(book_id)})
    author_as_book = await refused(client, BOOK_BY_ID, {"id": author_gid(author_id)})

    assert_bad_input(book_as_author, path="author", mentions="the id of a book, not of an author")
    assert_bad_input(author_as_book, path="book", mentions="the id of an author, not of a book")


@pytest.mark.parametrize(
    "value",
    ["not an id!", to_base64("Magazine", 1), to_base64("AuthorConnection", 1)],
    ids=["not-base64", "unknown-type", "not-a-node-type"],
)
async def test_node_rejects_malformed_id(client: GraphQLClient, value: str) -> None:
    """A client's bad id is its own mistake to fix, not an internal server error."""
    errors = await refused(client, NODE_BY_ID, {"id": value})

    assert len(errors) == 1, errors
    assert errors[0]["path"] == ["node"], errors
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors


# Filters


async def author_names(client: GraphQLClient, **filters: str) -> list[str]:
    data = await read(client, AUTHORS, {"first": 100, "filter": filters})
    names = [edge["node"]["name"] for edge in data["authors"]["edges"]]
    assert data["authors"]["totalCount"] == len(names)
    return names


async def test_filter_authors_by_country_exactly_ignoring_case(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    for name, country in [
        ("Ada", "Japan"),
        ("Ben", "JAPAN"),
        ("Cy", "japan"),
        ("Dee", "Japanese Empire"),
        ("Eve", "Nigeria"),
        ("Fay", None),
    ]:
        await insert_author(engine, name, country=country)

    assert await author_names(client, country="jApAn") == ["Ada", "Ben", "Cy"]
    assert await author_names(client, country="NIGERIA") == ["Eve"]
    assert await author_names(client, country="Japa") == []
    assert await author_names(client, country="Peru") == []


async def test_filter_authors_by_name_fragment_ignoring_case(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    for name in ["Ann Smith", "JOANNA", "Hannah", "Bob", "An Na"]:
        await insert_author(engine, name)

    assert await author_names(client, nameContains="aNN") == ["Ann Smith", "JOANNA", "Hannah"]
    assert await author_names(client, nameContains="bob") == ["Bob"]
    assert await author_names(client, nameContains="zzz") == []


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("100%", ["100% Pure"]),
        ("00% p", ["100% Pure"]),
        ("abc_d", ["Abc_Def"]),
        ("c_def", ["Abc_Def"]),
        ("def%_", []),
        ("k\\sla", ["Back\\Slash"]),
    ],
)
async def test_name_fragment_matches_wildcards_literally(
    client: GraphQLClient, engine: AsyncEngine, fragment: str, expected: list[str]
) -> None:
    for name in ["100% Pure", "1000 Pure", "Abc_Def", "AbcxDef", "Back\\Slash", "Plain"]:
        await insert_author(engine, name)

    assert await author_names(client, nameContains=fragment) == expected


async def test_author_filters_combine(client: GraphQLClient, engine: AsyncEngine) -> None:
    for name, country in [
        ("Haruki", "Japan"),
        ("Haruto", "Nigeria"),
        ("Kenji", "JAPAN"),
        ("Harumi", "japan"),
        ("Ngozi", None),
    ]:
        await insert_author(engine, name, country=country)

    assert await author_names(client, country="japan", nameContains="HARU") == [
        "Haruki",
        "Harumi",
    ]


async def book_ids(client: GraphQLClient, **filters: str) -> list[int]:
    data = await read(client, BOOKS, {"first": 100, "filter": filters})
    ids = node_ids(data["books"])
    assert data["books"]["totalCount"] == len(ids)
    return ids


async def test_filter_books_by_author(client: GraphQLClient, engine: AsyncEngine) -> None:
    author_ids = await insert_authors(engine, 3, books_each=3)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(Book.id, Book.author_id).order_by(Book.id))).all()

    for author_id in author_ids:
        own = [r.id for r in rows if r.author_id == author_id]
        assert await book_ids(client, authorId=author_gid(author_id)) == own
    assert await book_ids(client, authorId=author_gid(max(author_ids) + 1)) == []


@pytest.mark.parametrize(
    ("value", "mentions"),
    [
        ("not an id!", "authorId"),
        (to_base64("Author", "x"), "authorId"),
        (book_gid(1), "the id of a book"),
    ],
    ids=["not-base64", "not-numeric", "book-id"],
)
async def test_filter_books_rejects_malformed_author_id(
    client: GraphQLClient, engine: AsyncEngine, value: str, mentions: str
) -> None:
    await insert_authors(engine, 1, books_each=1)

    errors = await refused(client, BOOKS, {"filter": {"authorId": value}})

    assert_bad_input(errors, path="books", mentions=mentions)


async def test_filter_books_by_title_fragment(client: GraphQLClient, engine: AsyncEngine) -> None:
    first = await insert_author(engine, "Mary")
    second = await insert_author(engine, "Percy")
    titles = [
        (first.id, "Frankenstein"),
        (first.id, "The Last Man"),
        (second.id, "Ozymandias"),
        (second.id, "THE MASK OF ANARCHY"),
        (first.id, "Mathilda"),
    ]
    stored = [await insert_book(engine, author_id, title) for author_id, title in titles]

    def matching(fragment: str, author_id: int | None = None) -> list[int]:
        return [
            book.id
            for book, (owner, _) in zip(stored, titles, strict=True)
            if fragment.lower() in book.text.lower() and author_id in (None, owner)
        ]

    assert await book_ids(client, titleContains="the") == matching("the")
    assert await book_ids(client, titleContains="MAN") == matching("man")
    assert await book_ids(client, titleContains="man%") == []
    assert await book_ids(client, titleContains="man", authorId=author_gid(first.id)) == matching(
        "man", first.id
    )
    assert matching("man", first.id) != matching("man")  # the author filter took some out


# Orderings

# Orderings: every one the description lists, on data that tells each from the id order.

SORT_TEXTS = ["Mira", "Abe", "Zed", "Abe", "Kai", "Bo", "Zed", "Lu"]  # with ties
SORT_NUMBERS = [5, 3, 3, 9, 0, 7, 1, 3]  # with ties
ORDERINGS = [
    pytest.param(entity, name, id=f"{entity.name}.{name}")
    for entity in ENTITIES.values()
    for name in entity.orderings
]
TO_MANY = [
    pytest.param(entity, relation, name, id=f"{entity.name}.{relation.name}.{name}")
    for entity in ENTITIES.values()
    for relation in entity.relations
    if relation.cardinality is Cardinality.MANY
    for name in ENTITIES[relation.target].orderings
]


def sort_value(field: Field, index: int) -> Any:
    """Row `index`'s value of a sortable field; an optional number is null in some rows."""
    if field.kind is Kind.TEXT:
        if field.unique_ignoring_case:  # no ties allowed: a suffix breaks them, order kept
            return f"{SORT_TEXTS[index]} {index}"
        return SORT_TEXTS[index]
    if field.kind is Kind.TIMESTAMP:
        return EPOCH + timedelta(minutes=SORT_NUMBERS[index])
    if not field.required and index % 3 == 1:
        return None
    return (field.minimum or 0) + SORT_NUMBERS[index]


Parents = dict[str, list[int]]
"""Ids to refer to, by the name of the entity referred to."""


async def insert_sortable(
    engine: AsyncEngine, entity: Entity, parents: Parents | None = None
) -> list[dict[str, Any]]:
    """Rows whose every sort key varies, with ties; a reference goes to its `parents` in turn
    (null when none are given)."""
    parents = parents or {}
    sortable = [key.field for key in entity.order_keys if key.field.column is not entity.id_column]
    references = [f for f in entity.fields if f.kind is Kind.REFERENCE]

    def parent(reference: Field, index: int) -> int | None:
        ids = parents.get(reference.references or "")
        return ids[index % len(ids)] if ids else None

    values = [
        {
            **{f.key: sort_value(f, index) for f in sortable},
            **{f.key: parent(f, index) for f in references},
        }
        for index in range(len(SORT_NUMBERS))
    ]
    async with engine.begin() as connection:
        ids = await connection.scalars(
            insert(entity.model).returning(entity.id_column, sort_by_parameter_order=True), values
        )
        return [{**row, "id": row_id} for row, row_id in zip(values, ids, strict=True)]


async def parents_for(engine: AsyncEngine, entity: Entity, given: Parents) -> Parents:
    """`given`, and two new rows of each entity a required reference needs and `given` lacks."""
    parents = dict(given)
    for reference in (f for f in entity.fields if f.kind is Kind.REFERENCE and f.required):
        referred = ENTITIES[reference.references or ""]
        if referred.name not in parents:
            parents[referred.name] = [row["id"] for row in await insert_sortable(engine, referred)][
                :2
            ]
    return parents


async def insert_with_parents(engine: AsyncEngine, entity: Entity) -> list[dict[str, Any]]:
    """`insert_sortable` rows of `entity`, referring to two rows of each entity it needs."""
    return await insert_sortable(engine, entity, await parents_for(engine, entity, {}))


def expected_order(rows: Sequence[dict[str, Any]], ordering: Ordering) -> list[int]:
    """Ids in the ordering's order: its key (null as `nulls_as`), then the id, one direction."""
    key = ordering.key

    def sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
        if ordering.by_id:
            return (row["id"],)
        value = row[key.field.key]
        return (key.nulls_as if value is None else value, row["id"])

    return [row["id"] for row in sorted(rows, key=sort_key, reverse=ordering.descending)]


def assert_tells_apart(rows: Sequence[dict[str, Any]], entity: Entity, ordering: Ordering) -> None:
    """The data must tell this order from the id order, or the test would prove nothing."""
    if not ordering.by_id:
        by_id = [expected_order(rows, entity.ordering(f"ID_{d}")) for d in ("ASC", "DESC")]
        assert expected_order(rows, ordering) not in by_id


async def test_order_enums_list_the_described_orderings(client: GraphQLClient) -> None:
    for entity in ENTITIES.values():
        assert await enum_values(client, f"{entity.name}OrderBy") == set(entity.orderings)


@pytest.mark.parametrize(("entity", "order_by"), ORDERINGS)
async def test_root_connection_order_by(
    client: GraphQLClient, engine: AsyncEngine, entity: Entity, order_by: str
) -> None:
    rows = await insert_with_parents(engine, entity)
    ordering = entity.ordering(order_by)
    assert_tells_apart(rows, entity, ordering)
    query = (
        f"query($orderBy: {entity.name}OrderBy) {{ {entity.plural}(first: 100, orderBy: $orderBy)"
        " { edges { node { databaseId } } } }"
    )

    data = await read(client, query, {"orderBy": order_by})

    assert node_ids(data[entity.plural]) == expected_order(rows, ordering)


@pytest.mark.parametrize(("entity", "relation", "order_by"), TO_MANY)
async def test_to_many_relation_order_by(
    client: GraphQLClient, engine: AsyncEngine, entity: Entity, relation: Relation, order_by: str
) -> None:
    parent, other = (await insert_sortable(engine, entity))[:2]
    target = ENTITIES[relation.target]
    parents = await parents_for(engine, target, {entity.name: [parent["id"]]})
    rows = await insert_sortable(engine, target, parents)
    await insert_sortable(engine, target, {**parents, entity.name: [other["id"]]})
    ordering = target.ordering(order_by)
    assert_tells_apart(rows, target, ordering)
    label = entity.field_name
    query = (
        f"query($id: ID!, $orderBy: {target.name}OrderBy) {{ {label}(id: $id) {{ "
        f"{relation.name}(first: 100, orderBy: $orderBy) {{ edges {{ node {{ databaseId }} }} }}"
        " } }"
    )

    gid = to_base64(entity.name, parent["id"])
    data = await read(client, query, {"id": gid, "orderBy": order_by})

    assert node_ids(data[label][relation.name]) == expected_order(rows, ordering)


NULL_ORDERS = {
    "literal": ("query { %s(first: 100, orderBy: null) %s }", None),
    "null variable": ("query($o: %sOrderBy) { %s(first: 100, orderBy: $o) %s }", {"o": None}),
    "variable left out": ("query($o: %sOrderBy) { %s(first: 100, orderBy: $o) %s }", {}),
}


@pytest.mark.parametrize("how", NULL_ORDERS)
@pytest.mark.parametrize("entity", ENTITIES.values(), ids=lambda entity: entity.name)
async def test_a_null_order_is_the_default_order(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    entity: Entity,
    how: str,
) -> None:
    """A nullable `orderBy` (as Relay declares it) given null or nothing: the default order."""
    rows = await insert_with_parents(engine, entity)
    template, variables = NULL_ORDERS[how]
    selection = "{ edges { node { databaseId } } }"
    names = (
        (entity.plural, selection) if how == "literal" else (entity.name, entity.plural, selection)
    )
    query = template % names

    for answering in (client, resolver_client):
        data = await read(answering, query, variables)
        assert node_ids(data[entity.plural]) == expected_order(rows, entity.ordering(None))


ABORTED_SIBLINGS = """
query($id: ID!) {
  node(id: $id) { ... on Book { title author { name } } }
  authors(last: 5) { totalCount edges { node { books(first: 1, last: -1) { totalCount } } } }
}
"""


async def test_an_error_that_nulls_the_answer_leaves_its_siblings_sound(
    resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """graphql-core cancels the fields still running once an error has nulled the answer.

    A read cut off mid-statement must not leave the request's connection broken for the
    fields that read after it: the one error is the client's, not an internal one.
    """
    await insert_authors(engine, 9, books_each=3)
    for attempt in range(20):
        query = f"{ABORTED_SIBLINGS}# {attempt}"
        errors = await resolver_client.errors(query, {"id": book_gid(12)})
        assert [error["message"] for error in errors] == ["pass `first` or `last`, not both"], (
            errors
        )


async def test_node_finds_the_largest_id_and_nothing_past_it(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    largest = 2**31 - 1  # Postgres `integer`
    async with engine.begin() as connection:
        await connection.execute(insert(Author).values(id=largest, name="Last"))
    query = "query($id: ID!) { node(id: $id) { ... on Author { databaseId name } } }"

    for answering in (client, resolver_client):
        found = await read(answering, query, {"id": author_gid(largest)})
        past = await read(answering, query, {"id": author_gid(largest + 1)})
        assert found["node"] == {"databaseId": largest, "name": "Last"}
        assert past["node"] is None
