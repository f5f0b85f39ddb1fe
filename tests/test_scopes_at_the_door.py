"""Users' tokens and scopes, enforced once at the front door for both executors.

A JWT from the (stand-in) identity provider with `catalog:write` may create and update; only
`catalog:admin` (or the service token) may delete and seed. Under graphql-response+json a
missing or bad token is a 401 and a missing scope a 403, each with WWW-Authenticate; nothing
runs either way.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from tests.conftest import make_settings
from tests.factories import author_gid, insert_authors
from tests.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    claims,
    new_key,
    serving,
    sign,
)

SERVICE_TOKEN = "door-service-token-0123456789abcdef"
STRICT = {"Accept": "application/graphql-response+json"}
CREATE = 'mutation { createAuthor(input: {name: "By Token"}) { author { name } } }'


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    with serving(IdentityProvider([new_key("rs-1", "RS256")])) as served:
        yield served


@asynccontextmanager
async def door(
    database_url: str, provider: IdentityProvider, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        api_token=SERVICE_TOKEN,
        auth_jwks_url=provider.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        **overrides,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def token(provider: IdentityProvider, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(provider.key('RS256'), claims(**overrides))}"}


async def authors(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM authors")) or 0)


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_a_write_scope_creates_on_both_executors(
    database_url: str, engine: AsyncEngine, provider: IdentityProvider, planner: bool
) -> None:
    async with door(database_url, provider, query_planner=planner) as http:
        for _ in range(2):  # the second time a planner that learnt the document answers
            response = await http.post(
                "/graphql", json={"query": CREATE}, headers={**STRICT, **token(provider)}
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"data": {"createAuthor": {"author": {"name": "By Token"}}}}
    assert await authors(engine) == 2


@pytest.mark.parametrize("planner", [True, False], ids=["planner", "resolvers"])
async def test_deleting_needs_the_admin_scope(
    database_url: str, engine: AsyncEngine, provider: IdentityProvider, planner: bool
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    gid = author_gid(author_id)
    delete = f'mutation {{ deleteAuthor(input: {{id: "{gid}"}}) {{ author {{ id }} }} }}'
    async with door(database_url, provider, query_planner=planner) as http:
        writer = await http.post(
            "/graphql", json={"query": delete}, headers={**STRICT, **token(provider)}
        )
        admin = await http.post(
            "/graphql",
            json={"query": delete},
            headers={**STRICT, **token(provider, scope="catalog:write catalog:admin")},
        )
    assert writer.status_code == 403, writer.text
    assert writer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert 'error="insufficient_scope"' in writer.headers["www-authenticate"]
    assert "data" not in writer.json()
    assert admin.status_code == 200, admin.text
    assert await authors(engine) == 0


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", {}),
        ("garbage", {"Authorization": "Bearer not-a-token"}),
    ],
)
async def test_writes_without_a_valid_token_are_401(
    database_url: str,
    engine: AsyncEngine,
    provider: IdentityProvider,
    case: str,
    headers: dict[str, str],
) -> None:
    async with door(database_url, provider) as http:
        response = await http.post(
            "/graphql", json={"query": CREATE}, headers={**STRICT, **headers}
        )
        legacy = await http.post("/graphql", json={"query": CREATE}, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="catalog"')
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert legacy.status_code == 200  # application/json: errors in a 200, as its clients expect
    assert legacy.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await authors(engine) == 0


async def test_an_expired_token_is_401_even_for_a_read(
    database_url: str, provider: IdentityProvider
) -> None:
    async with door(database_url, provider) as http:
        response = await http.post(
            "/graphql",
            json={"query": "{ authors { totalCount } }"},
            headers={**STRICT, **token(provider, exp=1, iat=0, nbf=0)},
        )
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_reads_stay_open_unless_reads_require_auth(
    database_url: str, provider: IdentityProvider
) -> None:
    read = {"query": "{ authors { totalCount } }"}
    async with door(database_url, provider) as http:
        open_read = await http.post("/graphql", json=read, headers=STRICT)
    async with door(database_url, provider, reads_require_auth=True) as http:
        anonymous = await http.post("/graphql", json=read, headers=STRICT)
        signed_in = await http.post("/graphql", json=read, headers={**STRICT, **token(provider)})
    assert open_read.json() == {"data": {"authors": {"totalCount": 0}}}
    assert anonymous.status_code == 401, anonymous.text
    assert signed_in.json() == {"data": {"authors": {"totalCount": 0}}}
