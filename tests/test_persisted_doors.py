"""GraphQL over HTTP for frontends (tests that store documents take `engine`, so they start
with an empty store): GET queries with HTTP caching, media types and status codes,
and persisted documents by the spec's documentId, Apollo's APQ and Relay's doc_id, with
TRUSTED_DOCUMENTS deciding what may run."""

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.pipeline.door import FrontDoor
from tests.conftest import make_settings

# Every test starts from an empty catalogue and an empty document store.
pytestmark = pytest.mark.usefixtures("empty_catalog")

QUERY = "query Count { authors { totalCount } }"
STRICT = {"Accept": "application/graphql-response+json"}
LEGACY = {"Accept": "application/json"}


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@asynccontextmanager
async def served(
    database_url: str, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FrontDoor]]:
    app = create_app(make_settings(database_url, **overrides))
    door = app.routes[0].app  # type: ignore[attr-defined]
    assert isinstance(door, FrontDoor)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, door


async def store(door: FrontDoor, document: str, document_id: str | None = None) -> str:
    assert door.sources.store is not None
    stored_id = document_id or f"sha256:{sha256(document)}"
    await door.sources.store.register(stored_id, document, source="manifest")
    return stored_id


# GET and caching ---------------------------------------------------------------------------------


async def test_a_query_over_get_is_answered_with_an_etag_and_revalidated_with_304(
    database_url: str,
) -> None:
    async with served(database_url) as (http, _):
        first = await http.get("/graphql", params={"query": QUERY}, headers=LEGACY)
        again = await http.get(
            "/graphql",
            params={"query": QUERY},
            headers={**LEGACY, "If-None-Match": first.headers["etag"]},
        )
        signed = await http.get(
            "/graphql", params={"query": QUERY}, headers={**LEGACY, "Authorization": "Bearer x"}
        )
    assert first.status_code == 200, first.text
    assert first.json() == {"data": {"authors": {"totalCount": 0}}}
    assert first.headers["etag"].startswith('"')
    assert first.headers["cache-control"] == "public, no-cache"
    assert "Authorization" in first.headers["vary"]
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert signed.headers["cache-control"] == "private, no-cache"


async def test_cache_max_age_and_no_store_on_errors(database_url: str) -> None:
    async with served(database_url, cache_max_age=60) as (http, _):
        good = await http.get("/graphql", params={"query": QUERY})
        bad = await http.get("/graphql", params={"query": "{ nothingHere }"})
    assert good.headers["cache-control"] == "public, max-age=60"
    assert bad.headers["cache-control"] == "no-store"
    assert "etag" not in bad.headers


async def test_a_mutation_over_get_is_405_and_writes_nothing(
    database_url: str, engine: AsyncEngine
) -> None:
    mutation = 'mutation { createAuthor(input: {name: "Over GET"}) { author { id } } }'
    async with served(database_url) as (http, _):
        response = await http.get("/graphql", params={"query": mutation})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM authors")) == 0


async def test_get_variables_and_operation_name_are_read_from_the_url(database_url: str) -> None:
    document = "query A { __typename } query B($n: Int) { authors(first: $n) { totalCount } }"
    params = {"query": document, "operationName": "B", "variables": json.dumps({"n": 2})}
    async with served(database_url) as (http, _):
        response = await http.get("/graphql", params=params)
        broken = await http.get("/graphql", params={**params, "variables": "{not json"})
    assert response.json() == {"data": {"authors": {"totalCount": 0}}}
    assert broken.status_code == 400
    assert broken.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# Media types and status codes --------------------------------------------------------------------


async def test_graphql_response_json_is_the_default_and_request_errors_are_400_without_data(
    database_url: str,
) -> None:
    async with served(database_url) as (http, _):
        ok = await http.post("/graphql", json={"query": QUERY}, headers={"Accept": ""})
        invalid = await http.post("/graphql", json={"query": "{ nothingHere }"}, headers=STRICT)
        legacy = await http.post("/graphql", json={"query": "{ nothingHere }"}, headers=LEGACY)
        syntax = await http.post("/graphql", json={"query": "{ authors {"}, headers=STRICT)
        variables = await http.post(
            "/graphql",
            json={
                "query": "query($n: Int) { authors(first: $n) { totalCount } }",
                "variables": {"n": "x"},
            },
            headers=STRICT,
        )
        refused = await http.post(
            "/graphql", json={"query": QUERY}, headers={"Accept": "text/html"}
        )
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    assert invalid.status_code == 400
    assert "data" not in invalid.json()
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")
    assert syntax.status_code == 400
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert variables.status_code == 400
    assert "data" not in variables.json()
    assert variables.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused.status_code == 406
    assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_other_methods_are_405_with_allow(database_url: str) -> None:
    async with served(database_url) as (http, _):
        response = await http.put("/graphql", json={"query": QUERY})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST, OPTIONS"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


# Persisted documents -----------------------------------------------------------------------------


def apq(document: str | None, digest: str) -> dict[str, Any]:
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if document is not None:
        body["query"] = document
    return body


async def test_apollo_apq_falls_back_then_registers_and_answers_over_post_and_get(
    database_url: str,
    engine: AsyncEngine,
) -> None:
    digest = sha256(QUERY)
    async with served(database_url) as (http, _):
        unknown = await http.post("/graphql", json=apq(None, digest), headers=STRICT)
        registered = await http.post("/graphql", json=apq(QUERY, digest), headers=STRICT)
        by_hash = await http.post("/graphql", json=apq(None, digest), headers=STRICT)
        over_get = await http.get(
            "/graphql",
            params={"extensions": json.dumps(apq(None, digest)["extensions"])},
            headers=STRICT,
        )
        mismatch = await http.post("/graphql", json=apq(QUERY, "0" * 64), headers=STRICT)
    (error,) = unknown.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    expected = {"data": {"authors": {"totalCount": 0}}}
    assert registered.json() == expected
    assert by_hash.json() == expected
    assert over_get.json() == expected
    assert over_get.headers["etag"]
    assert mismatch.status_code == 400
    assert "does not match" in mismatch.json()["errors"][0]["message"]


async def test_document_id_over_get_and_relay_doc_id_run_stored_documents(
    database_url: str,
    engine: AsyncEngine,
) -> None:
    async with served(database_url) as (http, door):
        document_id = await store(door, QUERY)
        relay_id = await store(door, "query Relay { __typename }", "relay:abc123")
        by_id = await http.get("/graphql", params={"documentId": document_id})
        by_relay = await http.post("/graphql", json={"doc_id": "abc123"})
        missing = await http.get("/graphql", params={"documentId": "sha256:" + "1" * 64})
    assert relay_id == "relay:abc123"
    assert by_id.json() == {"data": {"authors": {"totalCount": 0}}}
    assert by_relay.json() == {"data": {"__typename": "Query"}}
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_trusted_documents_required_runs_only_stored_documents(
    database_url: str, engine: AsyncEngine
) -> None:
    other = "query Other { authors { totalCount } }"
    async with served(database_url, trusted_documents="require") as (http, door):
        document_id = await store(door, QUERY)
        stored = await http.post("/graphql", json={"documentId": document_id}, headers=STRICT)
        stored_text = await http.post("/graphql", json={"query": QUERY}, headers=STRICT)
        raw = await http.post("/graphql", json={"query": other}, headers=STRICT)
        registering = await http.post("/graphql", json=apq(other, sha256(other)), headers=STRICT)
    assert stored.json() == {"data": {"authors": {"totalCount": 0}}}
    assert stored_text.json() == stored.json()  # raw text whose hash is stored
    assert raw.status_code == 400
    (error,) = raw.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    assert registering.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_production_requires_trusted_documents_by_default(
    database_url: str, engine: AsyncEngine
) -> None:
    token = "production-token-0123456789abcdefgh"
    async with served(database_url, api_env="production", api_token=token) as (http, _):
        raw = await http.post("/graphql", json={"query": QUERY})
    assert raw.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
