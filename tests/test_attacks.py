"""Known attacks on a public GraphQL endpoint, each answered with a specific refusal.

Every response, whatever the attack: not a 500, nothing internal shown, nothing written.
"""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import (
    FragmentDefinitionNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    parse,
    visit,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.statements import statement_counter
from api.graphql.limits import counting_visits
from api.graphql.planner.document import operation_tree
from api.settings import Settings
from tests.conftest import make_settings
from tests.factories import insert_authors
from tests.graphql_client import GraphQLClient
from tests.security import WRITE_TOKEN_A, assert_safe, serve

DEFAULTS = Settings.model_fields
MAX_DEPTH: int = DEFAULTS["max_query_depth"].default
MAX_ALIASES: int = DEFAULTS["max_aliases"].default
MAX_TOKENS: int = DEFAULTS["max_tokens"].default
MAX_BODY: int = DEFAULTS["max_body_bytes"].default
MAX_PAGE: int = DEFAULTS["max_page_size"].default

CREATE_AUTHOR = (
    "mutation Create($name: String!) { createAuthor(input: {name: $name}) "
    "{ author { id } userErrors { field message code } } }"
)
AUTHORS_NAMED = "query($s: String) { authors(filter: {nameContains: $s}) { totalCount } }"
AUTHORS_FROM = "query($s: String) { authors(filter: {country: $s}) { totalCount } }"
BOOKS_TITLED = "query($s: String) { books(filter: {titleContains: $s}) { totalCount } }"


def nested(levels: int) -> str:
    """authors → books → author → books …: one more connection per level."""
    inner = "title"
    for _ in range(levels):
        inner = f"books {{ edges {{ node {{ {inner} author {{ name }} }} }} }}"
        inner = f"author {{ {inner} }}"
    return f"{{ books {{ edges {{ node {{ {inner} }} }} }} }}"


def deep_fragment_bomb(levels: int) -> str:
    """Each fragment spreads the one below it twice, one connection deeper."""
    fragments = ["fragment F0 on Author { name bio country }"]
    for i in range(1, levels + 1):
        fragments.append(
            f"fragment F{i} on Author {{ books {{ edges {{ node {{ author "
            f"{{ ...F{i - 1} ...F{i - 1} }} }} }} }} }}"
        )
    return f"{{ authors {{ edges {{ node {{ ...F{levels} }} }} }} }} " + " ".join(fragments)


def wide_fragment_bomb(levels: int) -> str:
    """Each fragment spreads the one below it twice at the same depth: 2**levels expansions."""
    fragments = ["fragment F0 on Author { name bio country }"]
    fragments += [
        f"fragment F{i} on Author {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)
    ]
    return f"{{ authors {{ edges {{ node {{ ...F{levels - 1} }} }} }} }} " + " ".join(fragments)


@dataclass(frozen=True)
class Request:
    method: str = "POST"
    body: Any = None  # sent as JSON unless `content` is given
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None


def gql(query: str, variables: dict[str, Any] | None = None) -> Request:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return Request(body=body)


def raw(content: bytes, content_type: str = "application/json", method: str = "POST") -> Request:
    return Request(method=method, content=content, headers={"Content-Type": content_type})


Check = Callable[[httpx.Response], None]


@dataclass(frozen=True)
class Attack:
    id: str
    request: Request
    status: int
    message: str | None = None  # a fragment of some error message, or of the body
    code: str | None = None  # the extensions.code of some error
    user_error: str | None = None  # the code of some userError in the payload
    check: Check | None = None  # anything else the answer must satisfy


def merged_or_token_limited(response: httpx.Response) -> None:
    payload = response.json()
    if "errors" in payload:
        assert any("tokens" in error["message"] for error in payload["errors"]), payload
    else:
        assert payload == {"data": {"authors": {"totalCount": 0}}}


def name_refused(response: httpx.Response) -> None:
    payload = response.json()
    assert "errors" not in payload, payload
    result = payload["data"]["createAuthor"]
    assert result["author"] is None
    assert [error["field"] for error in result["userErrors"]] == [["name"]], result


MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ __typename }\r\n--b--\r\n'
)
MUTATION = 'mutation { createAuthor(input: {name: "Mallory"}) { author { id } } }'

ATTACKS = [
    Attack(
        "deep nesting",
        gql(nested(3)),
        200,
        message=f"exceeds maximum operation depth of {MAX_DEPTH}",
    ),
    Attack(
        "alias bomb",
        gql(
            "{ "
            + " ".join(f"a{i}: authors {{ totalCount }}" for i in range(MAX_ALIASES + 1))
            + " }"
        ),
        200,
        message=f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}",
    ),
    Attack(
        "deep fragment bomb", gql(deep_fragment_bomb(5)), 200, message="maximum operation depth"
    ),
    Attack(
        "circular fragments",
        gql(
            "{ authors { edges { node { ...A } } } } "
            "fragment A on Author { name ...B } fragment B on Author { bio ...A }"
        ),
        200,
        message="Cannot spread fragment 'A' within itself",
    ),
    Attack(
        "document over the token limit",
        gql("{ " + "__typename " * (MAX_TOKENS + 500) + "}"),
        200,
        message=f"Document contains more than {MAX_TOKENS} tokens",
    ),
    Attack(
        "2 MB string variable",
        gql(AUTHORS_NAMED, {"s": "x" * 2_000_000}),
        413,
        message=f"larger than {MAX_BODY} bytes",
    ),
    Attack(
        "Content-Length over the limit",
        Request(
            content=b'{"query": "{ __typename }"}',
            headers={"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)},
        ),
        413,
        message=f"larger than {MAX_BODY} bytes",
    ),
    Attack("200 KB name", gql(CREATE_AUTHOR, {"name": "x" * 200_000}), 200, user_error="TOO_LONG"),
    Attack(
        "huge integer literal",
        gql("{ authors(first: 99999999999999999999) { totalCount } }"),
        200,
        message="Int cannot represent",
    ),
    Attack(
        "huge integer variable",
        gql("query($n: Int) { authors(first: $n) { totalCount } }", {"n": 2**31}),
        200,
        message="Int cannot represent",
    ),
    Attack(
        "page over the maximum",
        gql(f"{{ authors(first: {MAX_PAGE + 1}) {{ totalCount }} }}"),
        200,
        message=f"the largest page is {MAX_PAGE} items",
        code="BAD_USER_INPUT",
    ),
    Attack(
        "null byte in a name",
        gql(CREATE_AUTHOR, {"name": "Mal\x00lory"}),
        200,
        user_error="CONTROL_CHARACTERS",
    ),
    Attack(
        "bidi override in a name",
        gql(CREATE_AUTHOR, {"name": "abc\u202egpj.exe"}),
        200,
        user_error="INVISIBLE_CHARACTERS",
    ),
    Attack(
        "Hangul filler as a name",
        gql(CREATE_AUTHOR, {"name": "\u3164"}),
        200,
        user_error="INVISIBLE_CHARACTERS",
    ),
    Attack(
        "zero-width space in a name",
        gql(CREATE_AUTHOR, {"name": "Mal\u200blory"}),
        200,
        user_error="INVISIBLE_CHARACTERS",
    ),
    Attack(
        "wrong variable type",
        gql("query($first: Int) { authors(first: $first) { totalCount } }", {"first": "ten"}),
        200,
        message="Variable '$first' has invalid value",
    ),
    Attack("invalid JSON", raw(b'{"query": "{ __typename }"'), 400, message="not valid JSON"),
    Attack("JSON number body", raw(b"1"), 400),
    Attack("JSON string body", raw(b'"{ __typename }"'), 400),
    Attack("JSON null body", raw(b"null"), 400),
    Attack("invalid UTF-8 in JSON", raw(b'{"query": "{ __typename \xff }"}'), 400),
    Attack("deeply nested JSON", raw(b"[" * 100_000 + b"]" * 100_000), 400),
    Attack(
        "text/plain",
        raw(b'{"query": "{ __typename }"}', "text/plain"),
        415,
        message="application/json",
    ),
    Attack(
        "form post",
        raw(b"query=%7B+__typename+%7D", "application/x-www-form-urlencoded"),
        415,
        message="application/json",
    ),
    Attack(
        "multipart form",
        raw(MULTIPART, "multipart/form-data; boundary=b"),
        415,
        message="application/json",
    ),
    Attack(
        "mutation over GET",
        Request(method="GET", params={"query": MUTATION}),
        405,
        message="cannot be sent over GET",
    ),
    Attack("PUT", Request(method="PUT", body={"query": MUTATION}), 405, message="PUT"),
    Attack("DELETE", Request(method="DELETE"), 405, message="DELETE"),
    Attack("PATCH", Request(method="PATCH", body={"query": MUTATION}), 405, message="PATCH"),
    Attack(
        "same field 500 times",
        gql("{ authors { " + "totalCount " * 500 + "} }"),
        200,
        check=merged_or_token_limited,
    ),
    Attack(
        "directive 500 times",
        gql("{ authors { totalCount" + " @include(if: true)" * 500 + " } }"),
        200,
        message="tokens",
    ),
    Attack(
        "directive 100 times",
        gql("{ authors { totalCount" + " @include(if: true)" * 100 + " } }"),
        200,
        message="The directive '@include' can only be used once at this location",
    ),
    Attack(
        "batch while batching is off",
        Request(body=[{"query": "{ __typename }"}, {"query": MUTATION}]),
        400,
        message="Batching is not enabled",
    ),
    Attack(
        "lone surrogate in a name",
        gql(CREATE_AUTHOR, {"name": "Mal\ud800"}),
        400,
        message="invalid unicode",
    ),
    Attack(
        "null byte in a name filter",
        gql(AUTHORS_NAMED, {"s": "a\x00"}),
        200,
        code="BAD_USER_INPUT",
    ),
    Attack(
        "null byte in a country filter",
        gql(AUTHORS_FROM, {"s": "\x00"}),
        200,
        code="BAD_USER_INPUT",
    ),
    Attack(
        "null byte in a title filter", gql(BOOKS_TITLED, {"s": "\x00"}), 200, code="BAD_USER_INPUT"
    ),
    Attack(
        "lone surrogate in a name filter",
        gql(AUTHORS_NAMED, {"s": "\udfff"}),
        400,
        message="invalid unicode",
    ),
]


@pytest.fixture(scope="module")
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(make_settings(database_url)) as client:
        yield client


async def send(http: httpx.AsyncClient, request: Request) -> httpx.Response:
    content = request.content
    headers = dict(request.headers)
    if content is None and request.body is not None:
        # ensure_ascii keeps lone surrogates sendable, as \ud800 escapes.
        content = json.dumps(request.body).encode()
        headers.setdefault("Content-Type", "application/json")
    return await http.request(
        request.method, "/graphql", content=content, headers=headers, params=request.params
    )


async def row_counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        authors = await connection.scalar(text("SELECT count(*) FROM authors"))
        books = await connection.scalar(text("SELECT count(*) FROM books"))
    return authors or 0, books or 0


def error_messages(response: httpx.Response) -> list[str]:
    try:
        payload = response.json()
    except ValueError:
        return [response.text]
    if isinstance(payload, dict):
        return [str(error.get("message")) for error in payload.get("errors") or []]
    return [response.text]


def error_codes(response: httpx.Response) -> list[str]:
    payload = response.json()
    return [
        (error.get("extensions") or {}).get("code", "") for error in payload.get("errors") or []
    ]


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.id for attack in ATTACKS])
async def test_attack_is_refused(
    http: httpx.AsyncClient, engine: AsyncEngine, attack: Attack
) -> None:
    response = await send(http, attack.request)

    assert_safe(response)  # never a 5xx, nothing internal shown
    assert response.status_code == attack.status, response.text[:2000]
    if response.headers.get("content-type", "").startswith("application/json"):
        assert "INTERNAL_SERVER_ERROR" not in error_codes(response), response.text[:2000]
    if attack.message is not None:
        found = error_messages(response)
        assert any(attack.message in message for message in found), found
    if attack.code is not None:
        assert attack.code in error_codes(response), response.text[:2000]
    if attack.user_error is not None:
        payload = response.json()
        assert "errors" not in payload, payload
        result = payload["data"]["createAuthor"]
        assert result["author"] is None
        assert attack.user_error in [error["code"] for error in result["userErrors"]], result
    if attack.check is not None:
        attack.check(response)
    assert await row_counts(engine) == (0, 0)


async def test_body_streamed_past_the_limit_is_refused(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """No Content-Length to check up front: the guard counts what arrives."""
    chunk = b" " * 64 * 1024

    async def body() -> AsyncIterator[bytes]:
        yield b'{"query": "' + MUTATION.replace('"', '\\"').encode() + b'", "pad": "'
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk
        yield b'"}'

    response = await http.post(
        "/graphql", content=body(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_safe(response)
    assert response.status_code == 413, response.text
    assert await row_counts(engine) == (0, 0)


async def test_nested_pages_cannot_multiply_into_a_million_nodes(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """100 authors x 100 books x 100 books each is a million nodes from 150 bytes of query,
    within the depth, alias and token limits; it must be refused before it runs, whatever the
    data (on a full catalogue this one request took over a minute and 600 MB)."""
    query = (
        "{ authors(first: 100) { edges { node { books(first: 100) { edges { node "
        "{ author { books(first: 100) { edges { node { id title } } } } } } } } } } }"
    )
    response = await send(http, gql(query))
    assert_safe(response)
    payload = response.json()
    assert payload.get("errors"), payload
    assert payload.get("data") is None, payload


def selections_in(query: str) -> int:
    """Selections written in the document: what a check that remembers fragments walks."""
    count = 0

    class CountSelections(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
            nonlocal count
            count += len(node.selections)

    visit(parse(query), CountSelections())
    return count


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_fragment_fan_out_is_cheap_to_refuse_or_answer(
    database_url: str, engine: AsyncEngine, planner: bool
) -> None:
    """18 fragments, each spreading the one before twice: 250 tokens, depth 4, no aliases,
    but 2**17 expansions for any check that walks every spread without remembering.

    The work is counted, not timed: the limit checks (depth, aliases, cost) may look at each
    written selection a few times, never once per expansion; and one statement answers it.
    """
    query = wide_fragment_bomb(18)
    written = selections_in(query)
    async with serve(make_settings(database_url, query_planner=planner)) as app:
        for attempt in range(2):  # the second time, the document is known: no checks again
            with counting_visits() as visits, statement_counter() as statements:
                response = await send(app, gql(query))
            assert_safe(response)
            assert response.json() == {"data": {"authors": {"edges": []}}}, response.text
            assert visits.count <= 4 * written, (visits.count, written)
            # The second time the document is known, on both paths: no check runs again.
            assert (visits.count > 0) == (attempt == 0), visits.count
            assert statements.count <= 2, statements.count


def issue_fan_out(levels: int = 30) -> str:
    """The document from the report: 1.3 KB that doubled the planner's work at each level."""
    fragments = [f"fragment A{i} on Author{{...A{i + 1} ...A{i + 1}}}" for i in range(levels)]
    fragments.append(f"fragment A{levels} on Author{{name}}")
    return "query{authors(first:1){edges{node{...A0}}}} " + " ".join(fragments)


async def test_the_reported_fan_out_is_planned_with_linear_work(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    query = issue_fan_out()
    document = parse(query)
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    _, visited = operation_tree(operation, fragments)
    assert visited <= 4 * selections_in(query), (visited, selections_in(query))

    await insert_authors(engine, 2)
    expected = (await resolver_client.post(query)).json()
    assert expected["data"]["authors"]["edges"][0]["node"]["name"]
    for _ in range(2):
        with statement_counter() as statements:
            response = await client.post(query)
        assert_safe(response)
        assert response.json() == expected
        assert statements.count == 1  # planned, from the first request on


# Batching -------------------------------------------------------------------------------------

BATCH_LIMIT = 3


@pytest.fixture(scope="module")
async def batching(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url, batch_max_operations=BATCH_LIMIT, api_token=WRITE_TOKEN_A
    )
    async with serve(settings) as client:
        yield client


@pytest.mark.parametrize("size", range(1, BATCH_LIMIT + 1))
async def test_batches_up_to_the_limit_are_answered(
    batching: httpx.AsyncClient, engine: AsyncEngine, size: int
) -> None:
    operations = [{"query": f"{{ n{i}: __typename }}"} for i in range(size)]
    response = await batching.post("/graphql", json=operations)
    assert_safe(response)
    assert response.status_code == 200, response.text
    assert response.json() == [{"data": {f"n{i}": "Query"}} for i in range(size)]


async def test_batches_over_the_limit_are_refused(
    batching: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    operations = [{"query": MUTATION}] * (BATCH_LIMIT + 1)
    response = await batching.post(
        "/graphql", json=operations, headers={"Authorization": f"Bearer {WRITE_TOKEN_A}"}
    )
    assert_safe(response)
    assert response.status_code == 400, response.text
    assert "Too many operations" in response.text
    assert await row_counts(engine) == (0, 0)


async def test_batched_mutations_still_need_a_token(
    batching: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await batching.post("/graphql", json=[{"query": MUTATION}] * BATCH_LIMIT)
    assert_safe(response)
    results = response.json()
    assert len(results) == BATCH_LIMIT
    for result in results:
        assert "data" not in result  # refused at the door: a request error, nothing ran
        assert [e["extensions"]["code"] for e in result["errors"]] == ["UNAUTHENTICATED"]
    assert await row_counts(engine) == (0, 0)


async def test_limits_apply_to_each_batched_operation(
    batching: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await batching.post(
        "/graphql", json=[{"query": "{ __typename }"}, {"query": nested(3)}]
    )
    assert_safe(response)
    first, second = response.json()
    assert first == {"data": {"__typename": "Query"}}
    assert "data" not in second
    assert "exceeds maximum operation depth" in second["errors"][0]["message"]


BAD_BATCHES = {
    "numbers": b"[1, 2]",
    "strings": b'["{ __typename }"]',
    "nulls": b"[null]",
    "nested lists": b"[[]]",
    "an object and a number": b'[{"query": "{ __typename }"}, 1]',
}


@pytest.mark.parametrize("content", BAD_BATCHES.values(), ids=list(BAD_BATCHES))
async def test_malformed_batches_are_refused(
    batching: httpx.AsyncClient, engine: AsyncEngine, content: bytes
) -> None:
    response = await batching.post(
        "/graphql", content=content, headers={"Content-Type": "application/json"}
    )
    assert_safe(response)
    assert response.status_code == 400, response.text
