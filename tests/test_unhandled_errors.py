"""A failure nothing else caught still answers like the API: JSON, a request id, CORS headers.

Each test breaks one piece the request passes through, the way a bug would, and checks what
a browser app on an allowed origin receives.
"""

import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import pytest

from api.guards import GraphQLRequestGuard
from api.observability import requests
from api.pipeline import consistency as endpoint  # where the door runs serve_planned
from api.pipeline import resolvers as resolvers_module
from tests.conftest import make_settings
from tests.security import leaked_internals, serve

ORIGIN = "https://app.example"
# What the failure says: a leak of any of it would show in the response.
SECRET_DETAIL = 'SELECT password FROM users; File "/work/api/secret.py", line 1'


def explode(*_: Any, **__: Any) -> NoReturn:
    raise RuntimeError(SECRET_DETAIL)


def app_for(database_url: str, path: str) -> Any:
    settings = make_settings(database_url, cors_origins=[ORIGIN], query_planner=path == "planner")
    return serve(settings)


@pytest.fixture(params=["planner", "resolvers"])
async def http(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_for(database_url, request.param) as client:
        yield client


# The planner answers a plannable document before any GraphQL context exists; a directive
# sends it to the ordinary path, where the context is built.
ORDINARY_ONLY = "query($yes: Boolean = true) { authors { totalCount @include(if: $yes) } }"


async def ask(http: httpx.AsyncClient, query: str = "{ authors { totalCount } }") -> httpx.Response:
    return await http.post("/graphql", json={"query": query}, headers={"Origin": ORIGIN})


def assert_readable_500(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "errors": [
            {
                "message": "Internal server error",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
            }
        ]
    }
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert leaked_internals(response.text) == []
    assert "password" not in response.text


BREAKABLE = {
    # Where the request goes wrong: (object, attribute) replaced by `explode`.
    "the planner's endpoint": (endpoint, "serve_planned"),
    "building the GraphQL context": (resolvers_module, "build_context"),
    "the HTTP guard": (GraphQLRequestGuard, "_problem"),
}


# The planner's endpoint is only on the planner's path; the rest is on both.
CASES = [
    (path, where)
    for where in BREAKABLE
    for path in ("planner", "resolvers")
    if path == "planner" or where != "the planner's endpoint"
]


@pytest.mark.parametrize(("path", "where"), CASES, ids=[f"{p}: {w}" for p, w in CASES])
async def test_a_crash_inside_the_app_is_a_readable_500(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
    where: str,
) -> None:
    owner, attribute = BREAKABLE[where]
    async with app_for(database_url, path) as http:
        with monkeypatch.context() as patch, caplog.at_level(logging.ERROR, logger="api.errors"):
            patch.setattr(owner, attribute, explode)
            query = ORDINARY_ONLY if where == "building the GraphQL context" else None
            broken = await (ask(http, query) if query else ask(http))
        healed = await ask(http)

    assert_readable_500(broken)
    logged = [r for r in caplog.records if r.name == "api.errors" and r.exc_info]
    assert logged, "the failure is logged with its traceback"
    assert SECRET_DETAIL in logging.Formatter().format(logged[-1])
    assert healed.status_code == 200, healed.text
    assert isinstance(healed.json()["data"]["authors"]["totalCount"], int), healed.text


async def test_a_crash_in_the_request_log_is_a_readable_500(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request log sits outside CORS: Starlette's last resort answers, with our body."""
    with monkeypatch.context() as patch:
        patch.setattr(requests, "statement_counter", explode)
        broken = await ask(http)
        other_origin = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
        )

    assert_readable_500(broken)
    assert other_origin.status_code == 500
    assert "access-control-allow-origin" not in other_origin.headers
    assert other_origin.headers["x-request-id"]


async def test_crashes_are_counted_in_metrics(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(GraphQLRequestGuard, "_problem", explode)
        for _ in range(2):
            assert (await ask(http)).status_code == 500
    metrics = (await http.get("/metrics")).text
    assert 'graphql_http_rejections_total{reason="unhandled_error",status="500"} 2.0' in metrics
