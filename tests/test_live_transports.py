"""The live transports, graphql-transport-ws and graphql-sse, against a fake live service.

The app is the real one (`create_app`: its routes, middleware and front door) served by the
real server class on a real socket, with a fake `Live` put in its lifespan state: what is
tested here is the protocol on the wire, not the change feed behind it.
"""

import asyncio
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Message
from uvicorn.protocols.utils import ClientDisconnected
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.live.contract import Ended
from api.live.options import TransportOptions
from api.live.sse import wants_events
from api.live.websocket import Close, Connection
from api.pipeline.refusals import Refused, RequestCode
from tests.fake_live import PATIENCE, FakeLive
from tests.live_server import Running, served_app
from tests.served import PROJECT_ROOT
from tests.served import served as served_process

SUBSCRIPTION = "subscription { bookChanged { cursor kind id node { title } } }"
TOKEN = "live-transports-token-0123456789abcdef"
RUNNING = re.compile(rb"Uvicorn running on http://(127\.0\.0\.1:\d+)")


@pytest.fixture
def live() -> FakeLive:
    return FakeLive()


def running(
    database_url: str, live: FakeLive | None, **overrides: Any
) -> AbstractAsyncContextManager[Running]:
    """The app on a real socket with `live` for its live service, writes needing TOKEN."""
    return served_app(database_url, live, **{"api_token": TOKEN, **overrides})


@pytest.fixture
async def served(database_url: str, live: FakeLive) -> AsyncIterator[Running]:
    async with running(database_url, live, anonymous_max_body_bytes=1024) as app:
        yield app


# -- graphql-transport-ws ------------------------------------------------------------------


@asynccontextmanager
async def socket(
    url: str, protocol: str = "graphql-transport-ws", **options: Any
) -> AsyncIterator[ClientConnection]:
    async with connect(url, subprotocols=[protocol], **options) as ws:  # type: ignore[list-item]
        yield ws


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(frame).decode())


async def receive(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
    return frame


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """The server's close code and reason, whatever frames came before it."""
    with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 (frames, then the close)
        while True:
            await asyncio.wait_for(ws.recv(), PATIENCE)
    close = closed.value.rcvd
    assert close is not None, "the connection ended without a close frame"
    return close.code, close.reason


async def initialised(ws: ClientConnection, payload: dict[str, Any] | None = None) -> None:
    await send(ws, {"type": "connection_init", **({"payload": payload} if payload else {})})
    assert await receive(ws) == {"type": "connection_ack"}


async def subscribe(ws: ClientConnection, id: str, query: str = SUBSCRIPTION) -> None:
    await send(ws, {"id": id, "type": "subscribe", "payload": {"query": query}})


def book(title: str) -> dict[str, Any]:
    change = {"cursor": title, "kind": "CREATED", "id": "1", "node": {"title": title}}
    return {"data": {"bookChanged": change}}


async def test_a_subscription_sends_next_then_complete(served: Running, live: FakeLive) -> None:
    async with socket(served.ws_url) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await initialised(ws, {"authorization": f"Bearer {TOKEN}"})
        await subscribe(ws, "1")
        subscription = await live.next_opened()
        assert subscription.request == {"query": SUBSCRIPTION}
        assert subscription.authorization == f"Bearer {TOKEN}"
        subscription.push("Dune")
        subscription.push("Emma")
        assert await receive(ws) == {"id": "1", "type": "next", "payload": book("Dune")}
        assert await receive(ws) == {"id": "1", "type": "next", "payload": book("Emma")}
        subscription.end(Ended.COMPLETE)
        assert await receive(ws) == {"id": "1", "type": "complete"}
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)


async def test_credentials_come_from_the_init_headers_or_the_upgrade(
    served: Running, live: FakeLive
) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws, {"headers": {"Authorization": "Bearer from-headers"}})
        await subscribe(ws, "1")
        assert (await live.next_opened()).authorization == "Bearer from-headers"
    upgrade = {"Authorization": "Bearer from-upgrade"}
    async with socket(served.ws_url, additional_headers=upgrade) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        assert (await live.next_opened()).authorization == "Bearer from-upgrade"


async def test_the_client_completing_closes_the_subscription(
    served: Running, live: FakeLive
) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "a")
        subscription = await live.next_opened()
        await send(ws, {"id": "a", "type": "complete"})
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)
        subscription.push("after")  # nobody reads it: nothing is sent for "a" any more
        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}
        await subscribe(ws, "a")  # the id is free again
        assert (await live.next_opened()) is not subscription


async def test_pings_are_answered_with_their_payload(served: Running) -> None:
    async with socket(served.ws_url) as ws:
        await send(ws, {"type": "ping", "payload": {"at": 1}})  # allowed before init too
        assert await receive(ws) == {"type": "pong", "payload": {"at": 1}}
        await initialised(ws)
        await send(ws, {"type": "pong"})  # an unanswered pong is a heartbeat: ignored
        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_the_server_pings_and_closes_a_client_that_never_answers(
    database_url: str, live: FakeLive
) -> None:
    heartbeats = {"live_heartbeat_seconds": 0.1}
    async with running(database_url, live, **heartbeats) as app, socket(app.ws_url) as ws:
        await initialised(ws)
        for _ in range(3):  # answered: the connection stays
            assert await receive(ws) == {"type": "ping"}
            await send(ws, {"type": "pong"})
        assert await receive(ws) == {"type": "ping"}
        assert await closed_with(ws) == (4408, "Pong not received")


async def test_a_connection_without_init_is_closed_4408(database_url: str, live: FakeLive) -> None:
    impatient = {"live_init_timeout_seconds": 0.2}
    async with running(database_url, live, **impatient) as app, socket(app.ws_url) as ws:
        assert await closed_with(ws) == (4408, "Connection initialisation timeout")


@pytest.mark.parametrize(
    ("frames", "closed"),
    [
        ([{"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}], 4401),
        ([{"type": "connection_init"}, {"type": "connection_init"}], 4429),
        ([{"type": "connection_init"}, {"type": "next", "id": "1", "payload": {}}], 4400),
        ([{"type": "connection_init"}, {"type": "subscribe", "id": "1"}], 4400),
        ([{"type": "connection_init"}, {"kind": "ping"}], 4400),
        ([{"type": "connection_init", "payload": {"authorization": 7}}], 4400),
    ],
    ids=["subscribe-before-init", "second-init", "next-from-client", "no-payload", "no-type",
         "authorization-not-a-string"],
)  # fmt: skip
async def test_protocol_violations_close_with_the_library_codes(
    served: Running, frames: list[dict[str, Any]], closed: int
) -> None:
    async with socket(served.ws_url) as ws:
        for frame in frames:
            await send(ws, frame)
        code, _ = await closed_with(ws)
        assert code == closed


async def test_text_that_is_not_json_closes_4400(served: Running) -> None:
    async with socket(served.ws_url) as ws:
        await ws.send("{not json")
        assert await closed_with(ws) == (4400, "Invalid message received")


async def test_another_subprotocol_is_closed_4406(served: Running) -> None:
    async with socket(served.ws_url, protocol="graphql-ws") as ws:  # the legacy protocol
        assert await closed_with(ws) == (4406, "Subprotocol not acceptable")


async def test_a_duplicate_id_closes_4409(served: Running, live: FakeLive) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "same")
        subscription = await live.next_opened()
        await subscribe(ws, "same")
        assert await closed_with(ws) == (4409, "Subscriber for same already exists")
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)


async def test_a_refused_subscription_is_an_error_message(served: Running, live: FakeLive) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        live.refusal = Refused(RequestCode.UNAUTHENTICATED, "A valid bearer token is needed")
        await subscribe(ws, "1")
        assert await receive(ws) == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "A valid bearer token is needed",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }
        live.refusal = None  # the connection stays, and the id may be used again
        await subscribe(ws, "1", "{ books { totalCount } }")
        error = await receive(ws)
        assert (error["id"], error["type"]) == ("1", "error")
        assert error["payload"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_past_the_limit_per_connection_a_subscription_is_refused(
    database_url: str, live: FakeLive
) -> None:
    two = {"live_max_subscriptions_per_connection": 2}
    async with running(database_url, live, **two) as app, socket(app.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        await subscribe(ws, "2")
        first = await live.next_opened()
        await live.next_opened()
        await subscribe(ws, "3")
        error = await receive(ws)
        assert (error["id"], error["type"]) == ("3", "error")
        assert error["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        assert live.opened.empty()
        assert len(live.subscriptions) == 2
        first.end(Ended.COMPLETE)
        assert await receive(ws) == {"id": "1", "type": "complete"}
        await subscribe(ws, "3")
        third = await live.next_opened()
        third.push("Dune")
        assert await receive(ws) == {"id": "3", "type": "next", "payload": book("Dune")}


@pytest.mark.parametrize(
    ("why", "closed"),
    [
        (Ended.SHUTDOWN, (1001, "Server shutting down")),
        (Ended.SLOW_CONSUMER, (1013, "SLOW_CONSUMER")),
    ],
)
async def test_how_a_subscription_ended_decides_the_close(
    served: Running, live: FakeLive, why: Ended, closed: tuple[int, str]
) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        await subscribe(ws, "2")
        ending = await live.next_opened()
        other = await live.next_opened()
        ending.push("last")
        ending.end(why)
        assert await receive(ws) == {"id": "1", "type": "next", "payload": book("last")}
        assert await closed_with(ws) == closed
        await asyncio.wait_for(other.closed.wait(), PATIENCE)  # the connection's others too


async def test_a_client_vanishing_mid_stream_ends_its_subscriptions_quietly(
    served: Running, live: FakeLive, caplog: pytest.LogCaptureFixture
) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        subscription = await live.next_opened()
        subscription.push("seen")
        assert (await receive(ws))["type"] == "next"
        ws.transport.abort()  # no close frame: the TCP connection is simply gone
        for n in range(50):
            subscription.push(f"unseen {n}")
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_send_to_a_vanished_client_ends_the_connection_without_raising() -> None:
    async def gone(message: Message) -> None:
        raise ClientDisconnected

    async def nothing() -> Message:
        return {"type": "websocket.receive", "text": "{}"}

    scope = {"type": "websocket", "headers": [], "state": {}}
    connection = Connection(TransportOptions(), scope, nothing, gone)
    await connection.send({"type": "ping"})
    assert connection.finished
    assert connection.closed.is_set()
    await connection.close(Close.GOING_AWAY, "too late")  # nothing more is tried


async def test_a_fault_in_a_subscription_closes_4500(served: Running, live: FakeLive) -> None:
    async with socket(served.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        subscription = await live.next_opened()
        subscription.fail(RuntimeError("a bug"))
        assert await closed_with(ws) == (4500, "Internal server error")
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)


async def test_a_socket_without_a_live_service_is_refused_politely(database_url: str) -> None:
    async with running(database_url, None) as app, socket(app.ws_url) as ws:
        await initialised(ws)
        await subscribe(ws, "1")
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["payload"][0]["extensions"]["code"] == "SERVER_BUSY"


# -- graphql-sse ---------------------------------------------------------------------------


EVENTS = {"accept": "text/event-stream", "authorization": f"Bearer {TOKEN}"}


async def stream_events(response: httpx.Response) -> AsyncIterator[tuple[str, bytes]]:
    """(event, data) per event, and ("", b"") per comment, as they arrive."""
    buffer = b""
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            if block.startswith(b":"):
                yield "", b""
                continue
            fields: dict[bytes, bytes] = {}
            for line in block.split(b"\n"):
                name, _, value = line.partition(b":")
                fields[name] = value.removeprefix(b" ")
            yield fields[b"event"].decode(), fields.get(b"data", b"")


async def test_sse_streams_next_events_then_complete(served: Running, live: FakeLive) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        request = {"query": SUBSCRIPTION, "variables": {"after": "c1"}}
        async with http.stream("POST", served.http_url, json=request, headers=EVENTS) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            subscription = await live.next_opened()
            assert subscription.request == request
            assert subscription.authorization == f"Bearer {TOKEN}"
            subscription.push("Dune")
            events = stream_events(response)
            assert await anext(events) == ("next", orjson.dumps(book("Dune")))
            subscription.end(Ended.COMPLETE)
            assert await anext(events) == ("complete", b"")
            assert [e async for e in events] == []  # and the response ends
        await asyncio.wait_for(subscription.closed.wait(), PATIENCE)


async def test_sse_over_get_and_heartbeats(database_url: str, live: FakeLive) -> None:
    heartbeats = {"live_heartbeat_seconds": 0.05}
    async with (
        running(database_url, live, **heartbeats) as app,
        httpx.AsyncClient(timeout=PATIENCE) as http,
    ):
        params = {"query": SUBSCRIPTION}
        async with http.stream("GET", app.http_url, params=params, headers=EVENTS) as response:
            assert response.status_code == 200
            subscription = await live.next_opened()
            events = stream_events(response)
            assert await anext(events) == ("", b"")  # a comment while nothing happens
            subscription.push("Dune")
            while (received := await anext(events)) == ("", b""):
                pass
            assert received == ("next", orjson.dumps(book("Dune")))


async def test_sse_client_leaving_closes_the_subscription(served: Running, live: FakeLive) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        request = {"query": SUBSCRIPTION}
        async with http.stream("POST", served.http_url, json=request, headers=EVENTS) as response:
            assert response.status_code == 200
            subscription = await live.next_opened()
    await asyncio.wait_for(subscription.closed.wait(), PATIENCE)


@pytest.mark.parametrize(
    ("why", "last"),
    [
        (Ended.SHUTDOWN, []),
        (Ended.SLOW_CONSUMER, [("next", "SLOW_CONSUMER")]),
    ],
)
async def test_sse_ends_with_complete_however_it_ended(
    served: Running, live: FakeLive, why: Ended, last: list[tuple[str, str]]
) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        request = {"query": SUBSCRIPTION}
        async with http.stream("POST", served.http_url, json=request, headers=EVENTS) as response:
            (await live.next_opened()).end(why)
            events = [(name, data) async for name, data in stream_events(response)]
    assert events[-1] == ("complete", b"")
    ended = [
        (name, orjson.loads(data)["errors"][0]["extensions"]["code"]) for name, data in events[:-1]
    ]
    assert ended == last


async def test_a_fault_in_an_sse_subscription_is_a_masked_error_then_complete(
    served: Running, live: FakeLive
) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        request = {"query": SUBSCRIPTION}
        async with http.stream("POST", served.http_url, json=request, headers=EVENTS) as response:
            subscription = await live.next_opened()
            subscription.fail(RuntimeError("a bug"))
            events = [(name, data) async for name, data in stream_events(response)]
    assert [name for name, _ in events] == ["next", "complete"]
    error = orjson.loads(events[0][1])["errors"][0]
    assert (error["message"], error["extensions"]["code"]) == (
        "Internal server error",
        "INTERNAL_SERVER_ERROR",
    )
    assert subscription.closed.is_set()


async def test_sse_refusals_are_the_front_doors_json_answers(
    served: Running, live: FakeLive
) -> None:
    async with httpx.AsyncClient(timeout=PATIENCE) as http:
        live.refusal = Refused(RequestCode.UNAUTHENTICATED, "A valid bearer token is needed")
        refused = await http.post(served.http_url, json={"query": SUBSCRIPTION}, headers=EVENTS)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
        assert refused.json() == {
            "errors": [
                {
                    "message": "A valid bearer token is needed",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ]
        }
        live.refusal = None
        json = {**EVENTS, "content-type": "application/json"}
        not_json = await http.post(served.http_url, content=b"{", headers=json)
        assert not_json.status_code == 400
        assert not_json.json()["errors"][0]["message"].startswith("The request body is not")
        a_list = await http.post(served.http_url, json=[{"query": SUBSCRIPTION}], headers=EVENTS)
        assert a_list.status_code == 400
        # The same body limits as any request: without credentials, a read's size at most.
        anonymous = {"accept": "text/event-stream"}
        big = {"query": SUBSCRIPTION, "variables": {"pad": "x" * 2048}}
        too_big = await http.post(served.http_url, json=big, headers=anonymous)
        assert too_big.status_code == 413
        assert too_big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert live.subscriptions == []


async def test_sse_without_a_live_service_is_refused_politely(database_url: str) -> None:
    async with running(database_url, None) as app, httpx.AsyncClient(timeout=PATIENCE) as http:
        refused = await http.post(app.http_url, json={"query": SUBSCRIPTION}, headers=EVENTS)
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["extensions"]["code"] == "SERVER_BUSY"


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("text/event-stream", True),
        ("text/event-stream, application/json", True),
        ("application/json;q=0.5, text/event-stream", True),
        ("application/json, text/event-stream;q=0.5", False),
        # urql's fetchExchange, for every query: JSON first, so JSON it gets.
        (
            "application/graphql-response+json, application/graphql+json, application/json, "
            "text/event-stream, multipart/mixed",
            False,
        ),
        ("text/event-stream;q=0", False),
        ("application/graphql-response+json", False),
        ("*/*", False),
        (None, False),
    ],
)
def test_which_accept_headers_ask_for_a_stream(accept: str | None, wanted: bool) -> None:
    assert wants_events(accept) is wanted


# -- shutdown ------------------------------------------------------------------------------


async def test_sigterm_ends_live_connections_before_uvicorn_closes_them(
    database_url: str, live: FakeLive
) -> None:
    async with (
        running(database_url, live) as app,
        socket(app.ws_url) as busy,
        socket(app.ws_url) as idle,
        httpx.AsyncClient(timeout=PATIENCE) as http,
        http.stream("POST", app.http_url, json={"query": SUBSCRIPTION}, headers=EVENTS) as stream,
    ):
        await initialised(busy)
        await initialised(idle)
        await subscribe(busy, "1")
        await live.next_opened()
        await live.next_opened()  # the stream's
        # What uvicorn's SIGTERM handler does (which, after the shutdown, re-raises the
        # signal: here that would end the test run).
        app.server.should_exit = True
        assert await closed_with(busy) == (1001, "Server shutting down")
        assert await closed_with(idle) == (1001, "Server shutting down")
        assert [e async for e in stream_events(stream)] == [("complete", b"")]
    assert live.shutdowns == 1
    assert all(s.closed.is_set() for s in live.subscriptions)


@pytest.mark.slow  # a process of its own
async def test_a_real_sigterm_ends_live_connections_with_1001_and_complete(
    database_url: str,
) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_live_server", database_url,
        cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        line = await asyncio.wait_for(server.stderr.readline(), PATIENCE * 3)
        found = RUNNING.search(line)
        assert found, line
        base = found.group(1).decode()
        async with (
            socket(f"ws://{base}/graphql") as ws,
            httpx.AsyncClient(timeout=PATIENCE) as http,
            http.stream(
                "POST", f"http://{base}/graphql", json={"query": SUBSCRIPTION}, headers=EVENTS
            ) as stream,
        ):
            await initialised(ws)
            await subscribe(ws, "1")
            await send(ws, {"type": "ping"})  # answered once the frames before it were handled
            assert await receive(ws) == {"type": "pong"}
            assert stream.status_code == 200
            server.send_signal(signal.SIGTERM)
            assert await closed_with(ws) == (1001, "Server shutting down")
            assert [e async for e in stream_events(stream)] == [("complete", b"")]
        code = await asyncio.wait_for(server.wait(), PATIENCE * 3)
        assert code in (0, -signal.SIGTERM)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


@pytest.mark.slow  # a process of its own
async def test_the_served_app_speaks_graphql_ws_and_bounds_its_messages(database_url: str) -> None:
    async with served_process(DATABASE_URL=database_url, MAX_BODY_BYTES="16384") as app:
        base = app.http.base_url
        async with socket(f"ws://{base.host}:{base.port}/graphql") as ws:
            assert ws.response is not None
            # Offered by the client, declined: a zlib state per socket costs more than it saves.
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await initialised(ws)
            await send(ws, {"type": "ping"})
            assert await receive(ws) == {"type": "pong"}
            await send(ws, {"type": "ping", "payload": {"padding": "x" * 20_000}})
            code, _ = await closed_with(ws)
            assert code == 1009  # message too big: no larger than a request body
