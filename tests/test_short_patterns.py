"""A contains pattern too short for the trigram index is refused before any SQL, alike on the
planner's path and the resolvers' (the rule is the filter's `min_length`, read by both)."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.describe import CONTAINS_MIN_LENGTH, Filter, Op
from api.catalog.entities import ENTITIES
from api.db.statements import statement_counter
from tests.factories import insert_authors
from tests.graphql_client import GraphQLClient

CONTAINS = [
    (entity.plural, described)
    for entity in ENTITIES.values()
    for described in entity.filters
    if described.op is Op.CONTAINS
]
# Fewer than three letters or digits, whatever their length: nothing a trigram index can use.
SHORT = ["", "a", "Ab", "  z  ", "%%%", "___", "C++", "a-b", "1 %"]


def literal(pattern: str) -> str:
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


def documents(root: str, described: Filter, pattern: str) -> list[tuple[str, Any]]:
    """The same filter as a literal, and through a variable."""
    selection = "{ totalCount edges { node { id } } }"
    kind = f"{root[:-1].capitalize()}Filter"
    return [
        (f"{{ {root}(filter: {{{described.name}: {literal(pattern)}}}) {selection} }}", None),
        (
            f"query($f: {kind}) {{ {root}(filter: $f) {selection} }}",
            {"f": {described.name: pattern}},
        ),
    ]


def without_request_ids(response: httpx.Response) -> tuple[int, Any]:
    payload = response.json()
    for error in payload.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return response.status_code, payload


def test_every_contains_filter_needs_three_letters_or_digits() -> None:
    assert CONTAINS, "no contains filter described"
    for _, described in CONTAINS:
        assert described.min_length == CONTAINS_MIN_LENGTH == 3
        assert "At least 3 letters or digits." in described.description


@pytest.mark.parametrize("pattern", SHORT)
@pytest.mark.parametrize(("root", "described"), CONTAINS, ids=[f.name for _, f in CONTAINS])
async def test_a_short_pattern_is_refused_alike_on_both_paths_before_any_sql(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    root: str,
    described: Filter,
    pattern: str,
) -> None:
    await insert_authors(engine, 2, books_each=1)
    for query, variables in documents(root, described, pattern):
        answers = []
        for path in (resolver_client, client, client):  # the planner's twice: taught, planned
            with statement_counter() as counter:
                response = await path.post(query, variables)
            assert counter.count == 0, (query, variables)
            answers.append(without_request_ids(response))
        assert answers[1] == answers[0] == answers[2]
        status, payload = answers[0]
        assert status == 200
        assert payload["data"] is None
        (error,) = payload["errors"]
        assert error["path"] == [root]
        assert error["extensions"] == {"code": "PATTERN_TOO_SHORT"}
        assert error["message"] == (
            f"`{described.name}` needs at least 3 letters or digits: a shorter pattern cannot "
            "use the search index"
        )


@pytest.mark.parametrize(("root", "described"), CONTAINS, ids=[f.name for _, f in CONTAINS])
async def test_three_letters_or_digits_are_enough(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    root: str,
    described: Filter,
) -> None:
    """ "Author 000" and "Book 000-00": digits count, and so do letters among wildcards."""
    await insert_authors(engine, 3, books_each=2)
    pattern = "r 0" if root == "authors" else "k 0"
    expected = {"authors": 3, "books": 6}[root]
    for query, variables in documents(root, described, pattern + "0"):
        for path in (resolver_client, client):
            with statement_counter() as counter:
                response = await path.post(query, variables)
            assert counter.count > 0
            assert response.json()["data"][root]["totalCount"] == expected, response.text


async def test_a_short_pattern_beside_other_roots_is_refused_in_its_own_field(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Both paths agree when the refused field shares the document (`books` is non-null, so
    its error nulls `data`). Other root fields may have run their SQL by then: refusing the
    whole document first is the front door's to do."""
    await insert_authors(engine, 2, books_each=1)
    query = '{ authors { totalCount } books(filter: {titleContains: "ok"}) { totalCount } }'
    answers = [without_request_ids(await path.post(query)) for path in (resolver_client, client)]
    assert answers[0] == answers[1]
    _, payload = answers[0]
    assert payload["data"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in payload["errors"]] == [
        (["books"], "PATTERN_TOO_SHORT")
    ]
