"""Plans are compiled once per document and shape; the SQL cannot collide with new columns."""

from typing import Any

import orjson
import pytest
from graphql.execution.values import get_argument_values
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import front_door_for
from api.catalog.describe import Entity
from api.catalog.entities import ENTITIES
from api.catalog.ids import encode_id
from api.db.statements import statement_counter
from api.graphql.planner import binding, fastpath
from api.pipeline.door import FrontDoor
from api.settings import Settings
from tests.factories import insert_authors
from tests.graphql_client import GraphQLClient
from tests.test_planner_differential import comparable

PAGE = """
query Page($first: Int, $after: String, $order: AuthorOrderBy, $country: String) {
  authors(first: $first, after: $after, orderBy: $order, filter: {country: $country}) {
    edges { cursor node { id name books(first: $first) { edges { node { title } } } } }
    pageInfo { hasNextPage }
  }
}
"""


def body(query: str, variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


def plans_for(settings: Settings) -> FrontDoor:
    plans = front_door_for(settings)
    assert plans is not None
    return plans


async def test_one_compilation_per_shape_whatever_the_values(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[object] = []
    original = fastpath.compile_query  # type: ignore[attr-defined]

    def counting(*args: Any) -> Any:
        compiled.append(args)
        return original(*args)

    monkeypatch.setattr(fastpath, "compile_query", counting)
    plans = plans_for(settings)
    for first in range(1, 60):  # page sizes, countries and cursors vary; the shape does not
        variables = {"first": first, "country": f"country {first}"}
        prepared = await plans.prepare(body(PAGE, variables))
        assert prepared is not None
        assert first in prepared.parameters
        assert f"country {first}" in prepared.parameters
    assert len(compiled) == 1
    orderings = ENTITIES["Author"].orderings
    for order in orderings:  # a new ordering is a new shape
        given = {"first": 2, "order": order, "country": "Chile"}
        assert await plans.prepare(body(PAGE, given)) is not None
    assert len(compiled) == len(orderings)
    # Leaving every filter out is a lean shape: one per ordering, whatever the sizes.
    for order in orderings:
        for first in (2, 3):
            assert await plans.prepare(body(PAGE, {"first": first, "order": order}))
    assert len(compiled) == 2 * len(orderings)


VARIED = """
query Varied($id: ID!, $first: Int!, $after: String) {
  author(id: $id) { name books(first: $first, after: $after) { edges { cursor node { title } } } }
}
"""


async def test_a_request_binds_its_values_without_walking_the_document_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document's fields are walked when it is learnt; a request only reads its values,
    and arguments that are plain variables are read without graphql-core's coercion."""
    walked: list[str] = []
    coerced: list[str] = []
    walk_site = binding.Walk.site

    def counting_site(self: binding.Walk, parent: str, selection: Any) -> Any:
        walked.append(selection.name)
        return walk_site(self, parent, selection)

    def counting_reads(definition: Any, node: Any, variables: Any) -> Any:
        coerced.append(node.name.value)
        return get_argument_values(definition, node, variables)

    monkeypatch.setattr(binding.Walk, "site", counting_site)
    monkeypatch.setattr(binding, "get_argument_values", counting_reads)
    plans = plans_for(settings)
    books = ENTITIES["Book"].ordering(None)
    for key in range(1, 41):
        after = books.cursor_for(key, key) if key % 2 else None
        variables = {"id": encode_id("Author", key), "first": key % 7, "after": after}
        prepared = await plans.prepare(body(VARIED, variables))
        assert prepared is not None
        assert key in prepared.parameters
    assert walked == ["author", "books"]
    assert coerced == []


HELPER_LIKE_NAMES = ["rn", "sort_key_", "parent_id_", "behind_", "anon_1", "anon_2", "count_1"]


async def test_columns_named_like_the_planners_helpers_change_nothing(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """A migration may add any column; no name in the planner's SQL can become ambiguous."""
    await insert_authors(engine, 3, books_each=2)
    columns = ", ".join(f'ADD COLUMN "{name}" integer DEFAULT 7' for name in HELPER_LIKE_NAMES)
    drops = ", ".join(f'DROP COLUMN "{name}"' for name in HELPER_LIKE_NAMES)
    author = encode_id("Author", 1)
    queries: list[tuple[str, dict[str, Any]]] = [
        (PAGE, {"first": 2}),
        (PAGE, {"first": 2, "order": "NAME_DESC"}),
        ("query($id: ID!) { author(id: $id) { name books { totalCount } } }", {"id": author}),
        ("{ books(last: 3) { totalCount edges { node { title author { name } } } } }", {}),
    ]
    async with engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE books {columns}"))
        await connection.execute(text(f"ALTER TABLE authors {columns}"))
    try:
        for query, variables in queries:
            expected = comparable(await resolver_client.post(query, variables))
            assert isinstance(expected[1], bytes), expected
            for _ in range(2):
                with statement_counter() as statements:
                    answer = comparable(await client.post(query, variables))
                assert answer == expected
                assert statements.count == 1  # planned: one statement, no fallback
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"ALTER TABLE books {drops}"))
            await connection.execute(text(f"ALTER TABLE authors {drops}"))


BOOKS = "query($f: BookFilter) { books(filter: $f) { edges { node { title } } } }"
CREATE = "mutation($i: CreateBookInput!) { createBook(input: $i) { book { title } } }"


async def test_keys_the_planner_does_not_know_go_to_the_ordinary_path(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a filter or input key missing from the planner's view is never ignored."""
    plans = plans_for(settings)
    filtered = body(BOOKS, {"f": {"titleContains": "aaa"}})
    created = body(CREATE, {"i": {"authorId": encode_id("Author", 1), "title": "T"}})
    assert await plans.prepare(filtered) is not None
    assert await plans.prepare(created) is not None

    known_filter, known_field = Entity.filter, Entity.field
    monkeypatch.setattr(
        Entity,
        "filter",
        lambda self, name: None if name == "titleContains" else known_filter(self, name),
    )
    monkeypatch.setattr(
        Entity, "field", lambda self, name: None if name == "title" else known_field(self, name)
    )
    # New values (an exact repeat of a body would be answered from the planner's memo).
    filtered = body(BOOKS, {"f": {"titleContains": "bbb"}})
    created = body(CREATE, {"i": {"authorId": encode_id("Author", 2), "title": "T"}})
    assert await plans.prepare(filtered) is None
    assert await plans.prepare(created) is None
    counted = "query($f: BookFilter) { books(filter: $f) { totalCount } }"
    assert await plans.prepare(body(counted, {"f": None})) is not None  # what it knows is planned


async def test_a_request_is_kept_for_reuse_once_it_comes_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies sent once (new variables each time: a cursor, a search) are not kept, so they
    cost no memory and push out nothing; one sent again is kept, and answered from then on
    without being bound again (`FrontDoor.answer` looks there first)."""
    monkeypatch.setattr(fastpath, "REPEAT_WINDOW", 50)
    door = plans_for(settings)
    plans = door.plans
    assert plans is not None
    once = [body(VARIED, {"id": encode_id("Author", n), "first": 2}) for n in range(1, 200)]
    for request in once:
        assert plans.prepare(*await admitted(door, request), request) is not None
    assert len(plans._repeated) == 0
    again = once[-1]
    plans.prepare(*await admitted(door, again), again)  # seen twice: kept
    assert plans.repeated(again) is not None
    assert len(plans._repeated) == 1
    # Seen twice, but too long ago: 199 other bodies came between.
    first = once[0]
    plans.prepare(*await admitted(door, first), first)
    assert plans.repeated(first) is None


async def admitted(door: FrontDoor, request: bytes) -> tuple[Any, Any, Any]:
    parsed, operation, variables, _ = await door.admit(orjson.loads(request), None)
    return parsed, operation, variables
