"""The real live service on the wire: the app served by the project's server on a real
socket, a write over HTTP, its event over graphql-transport-ws and over SSE; resuming by
cursor over the wire; and a write on another process's connection reaching this one."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.live_server import served_app

PATIENCE = 10.0
BOOKS = (
    "subscription($after: String) { bookChanged(after: $after) { cursor kind id node { title } } }"
)
CREATE_AUTHOR = 'mutation { createAuthor(input: {name: "Wire"}) { author { id } } }'
CREATE_BOOK = (
    "mutation($author: ID!, $title: String!) "
    "{ createBook(input: {authorId: $author, title: $title}) { book { id } } }"
)

pytestmark = pytest.mark.usefixtures("empty_catalog")


@asynccontextmanager
async def served(database_url: str) -> AsyncIterator[str]:
    """The real app, its own live service included, on a real socket; yields host:port."""
    async with served_app(database_url) as running:
        yield running.base


async def post(http: httpx.AsyncClient, base: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        f"http://{base}/graphql", json={"query": query, "variables": variables}
    )
    payload = response.json()
    assert "errors" not in payload, payload
    return payload["data"]


async def frame(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
    return message


async def subscribed(ws: ClientConnection, **variables: Any) -> None:
    await ws.send(orjson.dumps({"type": "connection_init"}).decode())
    assert await frame(ws) == {"type": "connection_ack"}
    message = {"id": "1", "type": "subscribe", "payload": {"query": BOOKS, "variables": variables}}
    await ws.send(orjson.dumps(message).decode())


async def until_held(base: str, count: int) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(PATIENCE / 0.05)):
            metrics = (await http.get(f"http://{base}/metrics")).text
            if f"\nlive_subscriptions {float(count)}" in metrics:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"the server never held {count} subscriptions")


async def test_a_write_reaches_a_websocket_subscriber_and_resumes_by_cursor(
    database_url: str,
) -> None:
    async with served(database_url) as base, httpx.AsyncClient() as http:
        author = (await post(http, base, CREATE_AUTHOR))["createAuthor"]["author"]["id"]
        async with connect(f"ws://{base}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await subscribed(ws)
            await until_held(base, 1)
            book = await post(http, base, CREATE_BOOK, author=author, title="Over the wire")
            event = await frame(ws)
        assert event["type"] == "next"
        change = event["payload"]["data"]["bookChanged"]
        assert (change["kind"], change["id"], change["node"]) == (
            "CREATED",
            book["createBook"]["book"]["id"],
            {"title": "Over the wire"},
        )
        missed = await post(http, base, CREATE_BOOK, author=author, title="While away")
        async with connect(f"ws://{base}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await subscribed(ws, after=change["cursor"])
            resumed = (await frame(ws))["payload"]["data"]["bookChanged"]
        assert resumed["id"] == missed["createBook"]["book"]["id"]


async def test_a_write_reaches_an_sse_subscriber(database_url: str) -> None:
    async with served(database_url) as base, httpx.AsyncClient(timeout=PATIENCE) as http:
        author = (await post(http, base, CREATE_AUTHOR))["createAuthor"]["author"]["id"]
        request = {"query": BOOKS}
        headers = {"Accept": "text/event-stream"}
        async with http.stream(
            "POST", f"http://{base}/graphql", json=request, headers=headers
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            await until_held(base, 1)
            await post(http, base, CREATE_BOOK, author=author, title="As an event")
            lines = stream.aiter_lines()
            async with asyncio.timeout(PATIENCE):
                while await anext(lines) != "event: next":
                    pass
                data = await anext(lines)
        change = orjson.loads(data.removeprefix("data:").strip())["data"]["bookChanged"]
        assert (change["kind"], change["node"]) == ("CREATED", {"title": "As an event"})
