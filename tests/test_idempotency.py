"""Idempotency-Key: a retried write writes once, whatever happened to the first answer."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncTransaction

from api.app import create_app
from tests.conftest import make_settings
from tests.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    claims,
    new_key,
    serving,
    sign,
)

CREATE = (
    "mutation Create($name: String!) { createAuthor(input: {name: $name}) "
    "{ author { name } userErrors { code } } }"
)
STRICT = {"Accept": "application/graphql-response+json"}


@asynccontextmanager
async def served(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def create(name: str) -> dict[str, Any]:
    return {"query": CREATE, "variables": {"name": name}}


def keyed(key: str, **extra: str) -> dict[str, str]:
    return {**STRICT, "Idempotency-Key": key, **extra}


async def authors_named(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM authors WHERE name = :name"), {"name": name}
        )
    return int(count or 0)


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_a_retry_with_the_same_key_gets_the_stored_response_and_writes_nothing(
    database_url: str, engine: AsyncEngine, planner: bool
) -> None:
    async with served(database_url, query_planner=planner) as http:
        first = await http.post("/graphql", json=create("Once"), headers=keyed("k-1"))
        retry = await http.post("/graphql", json=create("Once"), headers=keyed("k-1"))
        other_key = await http.post("/graphql", json=create("Once"), headers=keyed("k-2"))
    assert first.status_code == 200, first.text
    assert first.json() == {
        "data": {"createAuthor": {"author": {"name": "Once"}, "userErrors": []}}
    }
    assert retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert other_key.status_code == 200
    assert await authors_named(engine, "Once") == 2  # k-1 once, k-2 once


async def test_the_same_key_with_another_request_is_422(
    database_url: str, engine: AsyncEngine
) -> None:
    async with served(database_url) as http:
        await http.post("/graphql", json=create("First"), headers=keyed("k-3"))
        reused = await http.post("/graphql", json=create("Second"), headers=keyed("k-3"))
    assert reused.status_code == 422, reused.text
    assert reused.json()["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await authors_named(engine, "Second") == 0


async def test_a_malformed_key_is_refused(database_url: str, engine: AsyncEngine) -> None:
    async with served(database_url) as http:
        response = await http.post("/graphql", json=create("Bad key"), headers=keyed("x" * 300))
    assert response.status_code == 400
    assert await authors_named(engine, "Bad key") == 0


async def test_a_retry_while_the_first_still_runs_gets_409_then_the_stored_response(
    database_url: str, engine: AsyncEngine
) -> None:
    """The first write is held behind a lock; its retry never runs a second write."""
    async with served(database_url, idempotency_wait=0.3) as http:
        async with engine.connect() as blocker:
            await blocker.execute(text("LOCK TABLE authors IN ACCESS EXCLUSIVE MODE"))
            first = asyncio.create_task(
                http.post("/graphql", json=create("Held"), headers=keyed("k-4"))
            )
            await asyncio.sleep(0.3)
            during = await http.post("/graphql", json=create("Held"), headers=keyed("k-4"))
            await blocker.rollback()
        answered = await first
        after = await http.post("/graphql", json=create("Held"), headers=keyed("k-4"))
    assert during.status_code == 409, during.text
    assert during.json()["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
    assert answered.status_code == 200, answered.text
    assert after.content == answered.content
    assert await authors_named(engine, "Held") == 1


@pytest.fixture
def commit_then_lose_the_answer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first commit reaches the database, then its connection drops before the answer."""
    lost: list[int] = []
    original = AsyncTransaction.commit

    async def commit(self: AsyncTransaction) -> None:
        await original(self)
        if not lost:
            lost.append(1)
            raise ConnectionResetError("connection lost after COMMIT was sent")

    monkeypatch.setattr(AsyncTransaction, "commit", commit)
    return lost


async def test_a_write_whose_answer_was_lost_is_retried_once_with_the_same_key(
    database_url: str, engine: AsyncEngine, commit_then_lose_the_answer: list[int]
) -> None:
    async with served(database_url) as http:
        lost = await http.post("/graphql", json=create("Lost"), headers=keyed("k-5"))
        retry = await http.post("/graphql", json=create("Lost"), headers=keyed("k-5"))
    assert commit_then_lose_the_answer == [1]
    assert lost.status_code == 503, lost.text
    assert lost.json()["errors"][0]["extensions"]["code"] == "WRITE_OUTCOME_UNKNOWN"
    assert "Idempotency-Key" in lost.json()["errors"][0]["message"]
    assert retry.status_code == 200, retry.text
    assert retry.json()["data"]["createAuthor"]["author"] == {"name": "Lost"}
    assert retry.headers["idempotent-replayed"] == "true"
    assert await authors_named(engine, "Lost") == 1


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    with serving(IdentityProvider([new_key("rs-1", "RS256")])) as served_provider:
        yield served_provider


async def test_keys_of_different_callers_are_independent(
    database_url: str, engine: AsyncEngine, provider: IdentityProvider
) -> None:
    settings = {
        "api_token": "idempotency-service-token-0123456789",
        "auth_jwks_url": provider.url,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
    }

    def user(subject: str) -> str:
        return "Bearer " + sign(provider.key("RS256"), claims(sub=subject))

    async with served(database_url, **settings) as http:
        alice = await http.post(
            "/graphql", json=create("Shared"), headers=keyed("same", Authorization=user("alice"))
        )
        bob = await http.post(
            "/graphql", json=create("Shared"), headers=keyed("same", Authorization=user("bob"))
        )
    assert "idempotent-replayed" not in alice.headers
    assert "idempotent-replayed" not in bob.headers
    assert await authors_named(engine, "Shared") == 2
