"""Production fails closed: no start without a strong write token (unless open writes are
chosen), anonymous writes refused on both GraphQL paths, and /metrics behind its own token."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.pipeline import consistency as endpoint  # where the door runs serve_planned
from tests.conftest import make_settings
from tests.factories import author_gid, insert_authors
from tests.security import WRITE_TOKEN_A, assert_safe, serve
from tests.test_cli import run_cli_async, single_error_line

METRICS_TOKEN = "met-Zq8Lw3Xn5Rk7Vb2Jt9Hc4Fy6"

# Every shape of "no usable token" and of "a token anyone could guess".
MISSING_TOKENS: dict[str, str | None] = {
    "unset": None,
    "empty": "",
    "blank": "   ",
    "a lone comma": ",",
    "commas and spaces": " , ,",
}
WEAK_TOKENS = {
    "placeholder": "changeme",
    "short": "k3Jx9-short",
    "long but one letter": "a" * 40,
    "long but few letters": "tok-" + "a" * 28,
    "one weak among strong": f"{WRITE_TOKEN_A},secret",
}


def production(database_url: str, **overrides: Any) -> Any:
    """Production, but running any document: these tests send their own (trusted documents,
    production's default, are tested in test_persisted_doors)."""
    overrides.setdefault("trusted_documents", "off")
    return make_settings(database_url, api_env="production", **overrides)


@pytest.mark.parametrize("token", MISSING_TOKENS.values(), ids=list(MISSING_TOKENS))
def test_production_refuses_to_start_without_a_token(database_url: str, token: str | None) -> None:
    with pytest.raises(ValidationError) as refused:
        production(database_url, api_token=token)
    message = str(refused.value)
    assert "API_TOKEN is not set" in message
    assert "API_OPEN_WRITES=true" in message


@pytest.mark.parametrize("token", WEAK_TOKENS.values(), ids=list(WEAK_TOKENS))
def test_production_refuses_weak_tokens(database_url: str, token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        production(database_url, api_token=token)
    assert "API_TOKEN has a weak or placeholder token" in str(refused.value)


@pytest.mark.parametrize("token", ["", "changeme", "short-metrics", "m" * 30])
def test_production_refuses_a_weak_metrics_token(database_url: str, token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        production(database_url, api_token=WRITE_TOKEN_A, metrics_token=token)
    assert "METRICS_TOKEN is weak" in str(refused.value)


def test_development_needs_no_token(database_url: str) -> None:
    settings = make_settings(database_url, api_token=",", metrics_token="x")
    assert settings.api_tokens == []


@pytest.mark.parametrize("token", ["", ","], ids=["empty", "comma"])
async def test_serve_refuses_in_one_line(tmp_path: Path, database_url: str, token: str) -> None:
    finished = await run_cli_async(
        tmp_path, "serve", DATABASE_URL=database_url, API_ENV="production", API_TOKEN=token
    )
    line = single_error_line(finished)
    assert line.startswith("error: API_TOKEN is not set"), line
    assert "API_OPEN_WRITES=true" in line


# --- writes ---------------------------------------------------------------------------------

AUTHOR_ID = author_gid(1)
WRITES = {
    "createAuthor": 'mutation { createAuthor(input: {name: "Mallory"}) { author { name } } }',
    "seedCatalog": 'mutation { seedCatalog(input: {authors: [{name: "Mallory", books: '
    '[{title: "Pwned"}]}]}) { authors { name } } }',
    "deleteAuthor": f'mutation {{ deleteAuthor(input: {{id: "{AUTHOR_ID}", withBooks: true}}) '
    "{ author { name } } }",
    "createBook": f'mutation {{ createBook(input: {{authorId: "{AUTHOR_ID}", title: "Pwned"}}) '
    "{ book { title } } }",
}


async def table_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT a.id, a.name, b.id, b.title FROM authors a "
                "LEFT JOIN books b ON b.author_id = a.id ORDER BY a.id, b.id"
            )
        )
        return [tuple(row) for row in result]


Post = Callable[[str], Awaitable[httpx.Response]]


@asynccontextmanager
async def app(database_url: str, planner: bool, **overrides: Any) -> AsyncIterator[Post]:
    async with serve(production(database_url, query_planner=planner, **overrides)) as http:

        async def post(query: str, headers: dict[str, str] | None = None) -> httpx.Response:
            response = await http.post("/graphql", json={"query": query}, headers=headers)
            assert_safe(response)
            assert response.status_code == 200, response.text
            return response

        yield post


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
@pytest.mark.parametrize("mutation", list(WRITES))
async def test_anonymous_writes_are_refused_in_production(
    database_url: str, engine: AsyncEngine, planner: bool, mutation: str
) -> None:
    await insert_authors(engine, 1, books_each=1)
    before = await table_rows(engine)
    async with app(database_url, planner, api_token=WRITE_TOKEN_A) as post:
        for _ in range(2):  # the second time, a planner that learned the document sees it first
            payload = (await post(WRITES[mutation])).json()
            assert "data" not in payload, payload  # refused at the door: nothing ran
            (error,) = payload["errors"]
            assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert await table_rows(engine) == before


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_open_writes_start_and_let_anyone_write(
    database_url: str, engine: AsyncEngine, planner: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[bool] = []
    original = endpoint.serve_planned  # type: ignore[attr-defined]

    async def spy(*args: Any) -> Any:
        response = await original(*args)
        planned.append(response is not None)
        return response

    monkeypatch.setattr(endpoint, "serve_planned", spy)
    await insert_authors(engine, 1)
    async with app(database_url, planner, api_open_writes=True) as post:
        created = (await post(WRITES["createAuthor"])).json()
        books = [(await post(WRITES["createBook"])).json() for _ in range(2)]
        seeded = (await post(WRITES["seedCatalog"])).json()

    assert created == {"data": {"createAuthor": {"author": {"name": "Mallory"}}}}
    assert books == [{"data": {"createBook": {"book": {"title": "Pwned"}}}}] * 2
    assert seeded == {"data": {"seedCatalog": {"authors": [{"name": "Mallory"}]}}}
    # createAuthor, createBook and seedCatalog are planned from their first request
    assert planned == ([True, True, True, True] if planner else []), planned
    titles = [row[3] for row in await table_rows(engine)]
    assert titles.count("Pwned") == 3


# --- /metrics -------------------------------------------------------------------------------


async def metrics_with(http: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await http.get("/metrics", headers=headers)


REFUSED_METRICS_AUTHORIZATION = {
    "missing": None,
    "wrong token": "Bearer met-Wrong8Lw3Xn5Rk7Vb2Jt9Hc4",
    "write token": f"Bearer {WRITE_TOKEN_A}",
    "basic": f"Basic {METRICS_TOKEN}",
    "prefix": f"Bearer {METRICS_TOKEN[:-1]}",
}


async def test_production_metrics_need_the_metrics_token(database_url: str) -> None:
    settings = production(database_url, api_token=WRITE_TOKEN_A, metrics_token=METRICS_TOKEN)
    async with serve(settings) as http:
        refused = {
            name: await metrics_with(http, authorization)
            for name, authorization in REFUSED_METRICS_AUTHORIZATION.items()
        }
        allowed = await metrics_with(http, f"Bearer {METRICS_TOKEN}")

    for name, response in refused.items():
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert "graphql_requests" not in response.text, name
    assert allowed.status_code == 200, allowed.text
    assert "graphql_requests_total" in allowed.text


async def test_production_without_a_metrics_token_serves_no_metrics(database_url: str) -> None:
    async with serve(production(database_url, api_token=WRITE_TOKEN_A)) as http:
        anonymous = await metrics_with(http, None)
        with_a_token = await metrics_with(http, f"Bearer {WRITE_TOKEN_A}")
    for response in (anonymous, with_a_token):
        assert response.status_code == 404, response.text
        assert "graphql_requests" not in response.text


async def test_development_metrics_are_open_unless_a_token_is_set(database_url: str) -> None:
    async with serve(make_settings(database_url)) as http:
        open_metrics = await metrics_with(http, None)
    async with serve(make_settings(database_url, metrics_token=METRICS_TOKEN)) as http:
        refused = await metrics_with(http, None)
        allowed = await metrics_with(http, f"bearer {METRICS_TOKEN}")
    assert open_metrics.status_code == 200
    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert "graphql_requests_total" in allowed.text
