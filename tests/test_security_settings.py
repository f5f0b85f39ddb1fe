"""What the settings change about security: production hardening, error masking, write
access with API tokens, the settings for users' tokens (JWKS), and CORS."""

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from api.db.migrations import alembic_config
from api.graphql import errors as error_policy
from tests.conftest import make_settings
from tests.factories import author_gid, book_gid, insert_authors
from tests.postgres import create_database, drop_database
from tests.security import WRITE_TOKEN_A, WRITE_TOKEN_B, assert_safe, serve

AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

INTROSPECTION_QUERIES = {
    "__schema": "{ __schema { types { name } } }",
    "__type": '{ __type(name: "Author") { name fields { name } } }',
}
MISSPELLED_FIELD = "{ authors { totalCont } }"
BAD_CURSOR = '{ authors(after: "not-a-cursor") { totalCount } }'
CREATE_AUTHOR = (
    "mutation Create($name: String!) { createAuthor(input: {name: $name}) "
    "{ author { id name } userErrors { field message code } } }"
)


@pytest.fixture
def app_factory(database_url: str) -> AppFactory:
    """Build an app on the test database with some settings overridden, as a context manager.

    Production gets a write token unless the test chooses: it refuses to start without one.
    """

    def factory(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        if overrides.get("api_env") == "production":
            overrides.setdefault("api_token", WRITE_TOKEN_A)
            # These tests send documents of their own: trusted documents are tested apart.
            overrides.setdefault("trusted_documents", "off")
        return serve(make_settings(database_url, **overrides))

    return factory


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = await http.post("/graphql", json=body, headers=headers)
    assert_safe(response)
    return response


def messages(response: httpx.Response) -> list[str]:
    return [error["message"] for error in response.json().get("errors", [])]


# Production hardening -------------------------------------------------------------------------


@pytest.mark.parametrize("query", INTROSPECTION_QUERIES.values(), ids=INTROSPECTION_QUERIES.keys())
async def test_production_refuses_introspection(app_factory: AppFactory, query: str) -> None:
    async with app_factory(api_env="production") as http:
        response = await post(http, query)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert "data" not in payload  # a document that fails validation: a request error
    assert any("introspection has been disabled" in m for m in messages(response)), payload
    assert '"Author"' not in response.text


async def test_production_still_answers_typename(app_factory: AppFactory) -> None:
    """Only introspection is refused: clients may still ask for __typename."""
    async with app_factory(api_env="production") as http:
        response = await post(http, "{ __typename }")
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_production_serves_no_graphiql(app_factory: AppFactory) -> None:
    async with app_factory(api_env="production") as http:
        response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert_safe(response)
    assert response.status_code != 200, response.text
    assert not response.headers.get("content-type", "").startswith("text/html")
    assert "graphiql" not in response.text.lower()


async def test_production_field_errors_suggest_nothing(app_factory: AppFactory) -> None:
    async with app_factory(api_env="production") as http:
        response = await post(http, MISSPELLED_FIELD)
    (message,) = messages(response)
    assert message.startswith("Cannot query field 'totalCont'"), message
    assert "Did you mean" not in response.text
    assert "totalCount" not in response.text


# Other misspellings that graphql-core answers with suggestions, each naming part of the schema.
MISSPELLINGS = {
    "argument": ("{ authors(frist: 1) { totalCount } }", None),
    "variable type": ("query($f: AuthorFiltr) { authors(filter: $f) { totalCount } }", None),
    "fragment type": ("{ authors { edges { node { ...F } } } } fragment F on Autor { name }", None),
    "input field literal": ('{ authors(filter: {nameContain: "x"}) { totalCount } }', None),
    "input field variable": (
        "query($f: AuthorFilter) { authors(filter: $f) { totalCount } }",
        {"f": {"nameContain": "x"}},
    ),
}


@pytest.mark.parametrize(
    ("query", "variables"), MISSPELLINGS.values(), ids=list(MISSPELLINGS.keys())
)
async def test_production_suggests_nothing_for_any_misspelling(
    app_factory: AppFactory, query: str, variables: dict[str, Any] | None
) -> None:
    """With introspection off, suggestions would still let a client map the schema by guessing."""
    async with app_factory(api_env="production") as http:
        response = await post(http, query, variables)
    assert response.json()["errors"], response.text
    assert "Did you mean" not in response.text


async def test_development_keeps_introspection_graphiql_and_suggestions(
    app_factory: AppFactory,
) -> None:
    async with app_factory(api_env="development") as http:
        schema = await post(http, INTROSPECTION_QUERIES["__schema"])
        ide = await http.get("/graphql", headers={"Accept": "text/html"})
        misspelled = await post(http, MISSPELLED_FIELD)

    types = {entry["name"] for entry in schema.json()["data"]["__schema"]["types"]}
    assert {"Author", "Book", "Query", "Mutation"} <= types

    assert ide.status_code == 200
    assert ide.headers["content-type"].startswith("text/html")
    assert "graphiql" in ide.text.lower()

    (message,) = messages(misspelled)
    assert "Did you mean 'totalCount'?" in message


# Error masking --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def stale_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A database migrated only to 0001, so reading authors.country fails in SQL."""
    url = await create_database(postgres_admin_url, prefix="catalog_stale")
    try:
        config = alembic_config(make_settings(url).migration_database, quiet=True)
        await asyncio.to_thread(command.upgrade, config, "0001")
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


@pytest.mark.parametrize("api_env", ["production", "development"])
async def test_unexpected_errors_are_masked_and_logged(
    stale_url: str, api_env: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing column is normally DATABASE_NOT_MIGRATED; treated as unforeseen here, it is
    # the SQL error nobody planned for, whose details must never reach the client.
    monkeypatch.setattr(error_policy, "is_not_migrated", lambda _: False)
    query = "{ authors { edges { node { name country } } } }"
    chosen_id = uuid.uuid4().hex
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        settings = make_settings(
            stale_url, api_env=api_env, api_token=WRITE_TOKEN_A, trusted_documents="off"
        )
        async with serve(settings) as http:
            generated = await post(http, query)
            chosen = await post(http, query, headers={"X-Request-ID": chosen_id})

    for response in (generated, chosen):
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["data"] is None
        (error,) = payload["errors"]
        assert error["message"] == "Internal server error"
        assert error["path"] == ["authors"]
        request_id = response.headers["x-request-id"]
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        for detail in ("country", 'column "', "does not exist", "Undefined", "catalog_stale"):
            assert detail not in response.text, response.text
    # The server makes every id: a client's own is only logged beside it.
    assert chosen.headers["x-request-id"] != chosen_id
    assert generated.headers["x-request-id"] != chosen.headers["x-request-id"]

    records = [record for record in caplog.records if record.name == "api.errors"]
    assert len(records) >= 2, records  # one per request at least
    for record in records:
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        logged = logging.Formatter().format(record)
        assert "UndefinedColumn" in logged, logged
        assert "country" in logged, logged


async def test_production_passes_user_errors_unchanged(
    app_factory: AppFactory, engine: AsyncEngine
) -> None:
    bearer = {"Authorization": f"Bearer {WRITE_TOKEN_A}"}
    async with app_factory(api_env="production", api_token=WRITE_TOKEN_A) as http:
        blank = await post(http, CREATE_AUTHOR, {"name": "   "}, headers=bearer)
        cursor = await post(http, BAD_CURSOR)
        too_big = await post(http, "{ authors(first: 101) { totalCount } }")

    assert blank.json() == {
        "data": {
            "createAuthor": {
                "author": None,
                "userErrors": [
                    {"field": ["name"], "message": "name must not be blank", "code": "BLANK"}
                ],
            }
        }
    }
    for response, message in [
        (cursor, "`after` is not a valid cursor"),
        (too_big, "`first` is 101; the largest page is 100 items"),
    ]:
        (error,) = response.json()["errors"]
        assert error["message"] == message
        assert error["extensions"] == {"code": "BAD_USER_INPUT"}
        assert error["path"] == ["authors"]


# Write access ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def guarded(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose mutations need one of two tokens."""
    settings = make_settings(database_url, api_token=f"{WRITE_TOKEN_A},{WRITE_TOKEN_B}")
    async with serve(settings) as http:
        yield http


Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


async def snapshot(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as connection:
        authors = await connection.execute(text("SELECT id, name FROM authors ORDER BY id"))
        books = await connection.execute(text("SELECT id, title, author_id FROM books ORDER BY id"))
        return [tuple(row) for row in authors], [tuple(row) for row in books]


def every_mutation(author_id: int, book_id: int) -> dict[str, str]:
    """One valid call of each mutation, against an existing author and book."""
    author, book = author_gid(author_id), book_gid(book_id)
    return {
        "createAuthor": 'createAuthor(input: {name: "Mallory"}) { author { id } }',
        "updateAuthor": f'updateAuthor(input: {{id: "{author}", name: "Mallory"}}) '
        "{ author { id } }",
        "deleteAuthor": f'deleteAuthor(input: {{id: "{author}", withBooks: true}}) '
        "{ author { id } }",
        "createBook": f'createBook(input: {{authorId: "{author}", title: "Pwned"}}) '
        "{ book { id } }",
        "updateBook": f'updateBook(input: {{id: "{book}", title: "Pwned"}}) {{ book {{ id }} }}',
        "deleteBook": f'deleteBook(input: {{id: "{book}"}}) {{ book {{ id }} }}',
        "seedCatalog": 'seedCatalog(input: {authors: [{name: "Mallory", books: [{title: "P"}]}]})'
        " { authors { id } }",
    }


def assert_unauthenticated(response: httpx.Response, field: str) -> None:
    payload = response.json()
    assert "data" not in payload, payload  # refused at the front door: nothing ran
    (error,) = payload["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED", error
    assert "Bearer" in error["message"]
    assert WRITE_TOKEN_A not in response.text
    assert WRITE_TOKEN_B not in response.text


@pytest.mark.parametrize("mutation", list(every_mutation(1, 1)))
async def test_every_mutation_needs_a_token(
    guarded: httpx.AsyncClient, engine: AsyncEngine, mutation: str
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=1)
    before = await snapshot(engine)
    book_id = before[1][0][0]
    selection = every_mutation(author_id, book_id)[mutation]
    response = await post(guarded, f"mutation {{ {selection} }}")
    assert_unauthenticated(response, mutation)
    assert await snapshot(engine) == before


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


REFUSED_AUTHORIZATION = {
    "missing": None,
    "wrong token": "Bearer tok-cccccccccccccccccccccccccccc",
    "basic token": _basic(WRITE_TOKEN_A),
    "basic user and token": _basic(f"user:{WRITE_TOKEN_A}"),
    "empty bearer": "Bearer ",
    "bare scheme": "Bearer",
    "token without scheme": WRITE_TOKEN_A,
    "other scheme": f"Token {WRITE_TOKEN_A}",
    "both tokens as one": f"Bearer {WRITE_TOKEN_A},{WRITE_TOKEN_B}",
    "prefix of a token": f"Bearer {WRITE_TOKEN_A[:-1]}",
    "token with a suffix": f"Bearer {WRITE_TOKEN_A}x",
    "token in upper case": f"Bearer {WRITE_TOKEN_A.upper()}",
}


@pytest.mark.parametrize(
    "authorization", REFUSED_AUTHORIZATION.values(), ids=list(REFUSED_AUTHORIZATION)
)
@pytest.mark.parametrize("mutation", ["createAuthor", "deleteAuthor"])
async def test_mutations_without_a_valid_token_write_nothing(
    guarded: httpx.AsyncClient, engine: AsyncEngine, authorization: str | None, mutation: str
) -> None:
    (author_id,) = await insert_authors(engine, 1, books_each=2)
    before = await snapshot(engine)
    headers = {} if authorization is None else {"Authorization": authorization}
    selection = every_mutation(author_id, before[1][0][0])[mutation]
    response = await post(guarded, f"mutation {{ {selection} }}", headers=headers)
    assert_unauthenticated(response, mutation)
    assert await snapshot(engine) == before


ACCEPTED_AUTHORIZATION = {
    "first token": f"Bearer {WRITE_TOKEN_A}",
    "second token": f"Bearer {WRITE_TOKEN_B}",
    "scheme in lower case": f"bearer {WRITE_TOKEN_A}",
}


@pytest.mark.parametrize(
    "authorization", ACCEPTED_AUTHORIZATION.values(), ids=list(ACCEPTED_AUTHORIZATION)
)
async def test_either_token_may_write(
    guarded: httpx.AsyncClient, engine: AsyncEngine, authorization: str
) -> None:
    response = await post(
        guarded, CREATE_AUTHOR, {"name": "Ngũgĩ"}, headers={"Authorization": authorization}
    )
    payload = response.json()
    assert "errors" not in payload, payload
    assert payload["data"]["createAuthor"]["author"]["name"] == "Ngũgĩ"
    authors, _ = await snapshot(engine)
    assert authors == [(1, "Ngũgĩ")]


async def test_queries_stay_public(guarded: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await insert_authors(engine, 2, books_each=1)
    response = await post(
        guarded, "{ authors { totalCount edges { node { name books { totalCount } } } } }"
    )
    assert response.json() == {
        "data": {
            "authors": {
                "totalCount": 2,
                "edges": [
                    {"node": {"name": "Author 000", "books": {"totalCount": 1}}},
                    {"node": {"name": "Author 001", "books": {"totalCount": 1}}},
                ],
            }
        }
    }


def test_production_accepts_strong_tokens(database_url: str) -> None:
    settings = make_settings(
        database_url, api_env="production", api_token=f" {WRITE_TOKEN_A} , {WRITE_TOKEN_B} "
    )
    assert settings.api_tokens == [WRITE_TOKEN_A, WRITE_TOKEN_B]


# Users' tokens: what start-up accepts ---------------------------------------------------------

JWKS = {
    "auth_jwks_url": "https://id.example/.well-known/jwks.json",
    "auth_issuer": "https://id.example/",
    "auth_audience": "https://catalog.example/graphql",
}


def test_production_may_authorise_writes_with_users_tokens_alone(database_url: str) -> None:
    settings = make_settings(database_url, api_env="production", **JWKS)
    assert settings.api_tokens == []
    assert settings.auth_configured
    assert (settings.auth_leeway, settings.reads_require_auth) == (30.0, False)


def test_production_without_any_way_to_authorise_writes_names_both(database_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, api_env="production")
    message = str(refused.value)
    for named in ("API_TOKEN", "AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "API_OPEN_WRITES"):
        assert named in message


def test_production_still_refuses_a_weak_token_beside_a_jwks(database_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, api_env="production", api_token="changeme", **JWKS)
    assert "API_TOKEN has a weak or placeholder token" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://id.example/jwks.json", "http://10.0.0.7/jwks.json", "http://localhost.evil.example/"],
)
def test_production_refuses_keys_over_plain_http(database_url: str, url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, api_env="production", **{**JWKS, "auth_jwks_url": url})
    assert "AUTH_JWKS_URL uses plain http" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/jwks.json", "http://[::1]/jwks.json", "http://localhost/jwks.json"],
)
def test_production_accepts_plain_http_from_this_machine(database_url: str, url: str) -> None:
    """A sidecar on the same host: the keys never cross a network an attacker could be on."""
    settings = make_settings(database_url, api_env="production", **{**JWKS, "auth_jwks_url": url})
    assert settings.auth_jwks_url == url


def test_development_accepts_keys_over_plain_http(database_url: str) -> None:
    url = "http://id.internal/jwks.json"
    assert make_settings(database_url, **{**JWKS, "auth_jwks_url": url}).auth_jwks_url == url


@pytest.mark.parametrize("missing", list(JWKS))
@pytest.mark.parametrize("api_env", ["production", "development"])
def test_a_jwks_needs_its_issuer_and_audience(
    database_url: str, missing: str, api_env: str
) -> None:
    partial = {name: value for name, value in JWKS.items() if name != missing}
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, api_env=api_env, api_token=WRITE_TOKEN_A, **partial)
    message = str(refused.value)
    assert f"{missing.upper()} not set" in message
    assert "AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE together" in message


def test_blank_auth_settings_are_unset(database_url: str) -> None:
    blank = dict.fromkeys(JWKS, "  ") | {"auth_scopes_claim": ""}
    settings = make_settings(database_url, **blank)
    assert (settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience) == (None,) * 3
    assert settings.auth_scopes_claim is None
    assert not settings.auth_configured


@pytest.mark.parametrize("url", ["ftp://id.example/jwks", "id.example/jwks.json", "https://"])
def test_a_jwks_url_must_be_http(database_url: str, url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, **{**JWKS, "auth_jwks_url": url})
    assert "AUTH_JWKS_URL is not an http(s) URL" in str(refused.value)


def test_reads_cannot_require_auth_that_nobody_can_have(database_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(database_url, reads_require_auth=True)
    assert "READS_REQUIRE_AUTH=true, but no caller could authenticate" in str(refused.value)
    assert make_settings(database_url, reads_require_auth=True, api_token=WRITE_TOKEN_A)
    assert make_settings(database_url, reads_require_auth=True, **JWKS).reads_require_auth


@pytest.mark.parametrize("leeway", [-1, 301])
def test_the_leeway_stays_small(database_url: str, leeway: float) -> None:
    with pytest.raises(ValidationError):
        make_settings(database_url, auth_leeway=leeway)


# CORS -----------------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example"


def preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_allows_the_configured_origin(app_factory: AppFactory) -> None:
    async with app_factory(cors_origins=[APP_ORIGIN]) as http:
        preflight = await http.options("/graphql", headers=preflight_headers(APP_ORIGIN))
        actual = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP_ORIGIN}
        )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    assert actual.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()


APOLLO_HEADERS = "apollographql-client-name, apollographql-client-version"


async def test_cors_preflight_accepts_apollo_client_awareness_headers(
    app_factory: AppFactory,
) -> None:
    headers = preflight_headers(APP_ORIGIN)
    headers["Access-Control-Request-Headers"] = f"authorization, content-type, {APOLLO_HEADERS}"
    async with app_factory(cors_origins=[APP_ORIGIN]) as http:
        preflight = await http.options("/graphql", headers=headers)
        actual = await http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={
                "Origin": APP_ORIGIN,
                "apollographql-client-name": "web",
                "apollographql-client-version": "1.2.3",
            },
        )
    assert preflight.status_code == 200, preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "apollographql-client-name" in allowed
    assert "apollographql-client-version" in allowed
    assert actual.json() == {"data": {"__typename": "Query"}}
    assert actual.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_cors_advertises_get_post_and_options(app_factory: AppFactory) -> None:
    """Queries are served over GET (cacheable); PUT and the rest are not advertised."""
    asking_for_put = preflight_headers(APP_ORIGIN) | {"Access-Control-Request-Method": "PUT"}
    async with app_factory(cors_origins=[APP_ORIGIN]) as http:
        preflight = await http.options("/graphql", headers=preflight_headers(APP_ORIGIN))
        for_put = await http.options("/graphql", headers=asking_for_put)
    methods = {m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "OPTIONS"}
    assert_safe(for_put)
    assert for_put.status_code == 400, for_put.text
    assert "method" in for_put.text.lower()


OTHER_ORIGINS = [
    "https://evil.example",
    "http://app.example",
    "https://app.example.evil.example",
    "https://app.example:8443",
    "null",
]


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
async def test_cors_refuses_other_origins(app_factory: AppFactory, origin: str) -> None:
    async with app_factory(cors_origins=[APP_ORIGIN]) as http:
        preflight = await http.options("/graphql", headers=preflight_headers(origin))
        actual = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
        )
    assert_safe(preflight)
    assert preflight.status_code != 200
    for response in (preflight, actual):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers


async def test_no_cors_by_default(app_factory: AppFactory) -> None:
    async with app_factory() as http:
        preflight = await http.options("/graphql", headers=preflight_headers(APP_ORIGIN))
        actual = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP_ORIGIN}
        )
    assert preflight.status_code != 200
    for response in (preflight, actual):
        allowed = [name for name in response.headers if name.startswith("access-control-allow-o")]
        assert allowed == []
        assert "access-control-allow-credentials" not in response.headers
