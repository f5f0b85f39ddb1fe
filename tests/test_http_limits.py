"""HTTP limits on the real server: request heads bounded in size and time, idle connections
closed, and a concurrency limit answered in JSON (issue 15, item 6).

Each test speaks raw HTTP/1.1 over a socket, since a client library would neither send a
header without end nor keep quiet on an open connection.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from api.serving.protocol import BoundedHttpToolsProtocol, BusyLog, HttpLimits
from api.settings import Settings
from tests.served import Served, served, wait_until

HEAD_LIMIT = 4096
HEAD_TIMEOUT = "1"
KEEPALIVE_TIMEOUT = "1"
# Long enough for a busy two-core machine; the limits under test are a second.
CLOSED_WITHIN = 20.0


@pytest.fixture(scope="module")
async def server(database_url: str) -> AsyncIterator[Served]:
    async with served(
        DATABASE_URL=database_url,
        HTTP_MAX_HEADER_BYTES=str(HEAD_LIMIT),
        HTTP_HEADER_TIMEOUT=HEAD_TIMEOUT,
        HTTP_KEEPALIVE_TIMEOUT=KEEPALIVE_TIMEOUT,
    ) as running:
        yield running


@asynccontextmanager
async def connection(
    server: Served,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    url = server.http.base_url
    assert url.host is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSED_WITHIN)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (end of stream, a reset, a broken pipe)."""
    try:
        while await asyncio.wait_for(reader.read(65536), CLOSED_WITHIN):
            pass
    except ConnectionError:
        pass
    return True


def get(path: str = "/healthz", *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode()


# --- head size ------------------------------------------------------------------------------


async def test_a_head_over_the_limit_is_answered_431_without_waiting_for_its_end(
    server: Served,
) -> None:
    """The head never ends: only a server that counts its bytes can answer at all."""
    async with connection(server) as (reader, writer):
        writer.write(get().removesuffix(b"\r\n") + b"X-Padding: " + b"a" * HEAD_LIMIT)
        await writer.drain()

        status, headers, body = await read_response(reader)
        assert status == 431
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        (error,) = json.loads(body)["errors"]
        assert error["extensions"] == {"code": "REQUEST_HEADERS_TOO_LARGE"}
        assert str(HEAD_LIMIT) in error["message"]
        assert await closed_by_server(reader)


async def test_a_head_over_the_limit_sent_in_full_still_gets_its_431(server: Served) -> None:
    """The client sends its whole (too large) head before reading: the server discards what
    follows the refusal instead of resetting the connection, which could lose the 431."""
    async with connection(server) as (reader, writer):
        for _ in range(16):
            writer.write(b"GET /healthz HTTP/1.1\r\n" if _ == 0 else b"")
            writer.write(b"X-Padding-%d: %s\r\n" % (_, b"a" * 4000))
            await writer.drain()
        writer.write(b"\r\n")
        await writer.drain()
        status, _, _ = await read_response(reader)
        assert status == 431
        assert await closed_by_server(reader)


async def test_a_huge_head_is_cut_off_long_before_its_end(server: Served) -> None:
    """64 MiB of header: the server stops reading after the limit (and a little lingering),
    so the kernel's buffers, not the 64 MiB, bound what the client manages to send."""
    huge, chunk = 64 * 1024 * 1024, b"a" * 65536
    sent = 0
    async with connection(server) as (reader, writer):
        writer.write(get().removesuffix(b"\r\n") + b"X-Padding: ")
        try:
            while sent < huge:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), CLOSED_WITHIN)
                sent += len(chunk)
        except ConnectionError:
            pass
        assert await closed_by_server(reader)
    assert sent < huge // 4, sent


async def test_a_head_under_the_limit_is_served(server: Served) -> None:
    async with connection(server) as (reader, writer):
        writer.write(get("/healthz", "X-Padding: " + "a" * (HEAD_LIMIT - 200)))
        status, _, body = await read_response(reader)
    assert (status, json.loads(body)) == (200, {"status": "ok"})


async def test_a_body_arriving_with_its_head_is_not_counted_as_head(server: Served) -> None:
    """Head and a body larger than the head limit in one write: the head ends inside the
    limit, so the rest is read as the body."""
    body = b'{"query": "{ __typename }"' + b" " * (4 * HEAD_LIMIT) + b"}"
    head = (
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with connection(server) as (reader, writer):
        writer.write(head + body)
        status, _, answer = await read_response(reader)
        assert (status, json.loads(answer)["data"]) == (200, {"__typename": "Query"})

        writer.write(get())  # the next request on the connection is counted afresh
        status, _, _ = await read_response(reader)
        assert status == 200


# --- time to send a head ------------------------------------------------------------------------


async def trickle_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_line: bytes
) -> int:
    """Send `first_line`, then a header line every 0.2 s (at most 100) until the server
    closes the connection; how many lines went out."""
    lines_sent = 0
    writer.write(first_line)
    closed = asyncio.create_task(closed_by_server(reader))
    try:
        while not closed.done() and lines_sent < 100:
            writer.write(b"X-Slow: %d\r\n" % lines_sent)
            await writer.drain()
            lines_sent += 1
            await asyncio.sleep(0.2)
    except ConnectionError:
        pass
    assert await closed
    return lines_sent


async def test_a_slowloris_head_is_cut_off(server: Served) -> None:
    """A header line every 0.2 s never finishes the head; the deadline covers the whole head,
    so trickling bytes does not extend it."""
    async with connection(server) as (reader, writer):
        lines_sent = await trickle_until_closed(
            reader, writer, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
        )
    assert 0 < lines_sent < 100, lines_sent


async def test_a_slow_second_head_on_a_kept_alive_connection_is_cut_off(server: Served) -> None:
    """The deadline starts again with the next request's first byte."""
    async with connection(server) as (reader, writer):
        writer.write(get())
        status, _, _ = await read_response(reader)
        assert status == 200
        lines_sent = await trickle_until_closed(reader, writer, b"GET /healthz HTTP/1.1\r\n")
    assert 0 < lines_sent < 100, lines_sent


async def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    async with connection(server) as (reader, _):
        assert await closed_by_server(reader)


async def test_an_idle_keepalive_connection_is_closed(server: Served) -> None:
    async with connection(server) as (reader, writer):
        writer.write(get())
        status, headers, _ = await read_response(reader)
        assert status == 200
        assert "connection" not in headers  # kept alive, until idle for too long
        assert await closed_by_server(reader)


# --- concurrency ------------------------------------------------------------------------------


async def test_requests_past_the_concurrency_limit_get_a_json_503(database_url: str) -> None:
    async with served(DATABASE_URL=database_url, HTTP_LIMIT_CONCURRENCY="3") as running:
        async with (
            connection(running) as (idle_reader, _),
            connection(running),
            connection(running),
            connection(running) as (reader, writer),
        ):
            writer.write(get())
            status, headers, body = await read_response(reader)
            assert status == 503
            assert headers["retry-after"] == "1"
            assert headers["content-type"] == "application/json"
            (error,) = json.loads(body)["errors"]
            assert error["extensions"] == {"code": "SERVER_BUSY"}
            assert not idle_reader.at_eof()

        async def served_again() -> bool:
            try:
                async with httpx.AsyncClient(base_url=running.http.base_url) as fresh:
                    return (await fresh.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(served_again, "the closed connections free their places")


async def test_the_keepalive_setting_reaches_each_connection() -> None:
    """uvicorn's own keep-alive is whole seconds and 5 by default; the setting replaces it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    protocol_class = BoundedHttpToolsProtocol.with_limits(
        Settings.model_construct().options(HttpLimits, keepalive_timeout=0.25)
    )
    config = uvicorn.Config(app, log_config=None)
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    assert protocol.timeout_keep_alive == 0.25
    assert protocol.limits.max_header_bytes == 16 * 1024


async def test_bytes_that_are_not_http_get_a_json_400(server: Served) -> None:
    async with connection(server) as (reader, writer):
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 400
        assert headers["content-type"] == "application/json"
        (error,) = json.loads(body)["errors"]
        assert error["extensions"] == {"code": "BAD_REQUEST"}
        assert await closed_by_server(reader)


async def test_pipelined_requests_are_each_answered(server: Served) -> None:
    """Two requests in one write, together over the head limit though each is under it."""
    padding = "X-Padding: " + "a" * (HEAD_LIMIT * 3 // 4)
    async with connection(server) as (reader, writer):
        writer.write(get("/healthz", padding) + get("/readyz", padding))
        first, _, _ = await read_response(reader)
        second, _, _ = await read_response(reader)
    assert (first, second) == (200, 200)


def test_a_flood_of_503s_is_logged_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    busy = BusyLog(every=1.0)
    with caplog.at_level(logging.WARNING, logger="api.http"):
        for tick in range(100):
            busy(now=1000.0 + tick / 100, limit=10)
        busy(now=1001.5, limit=10)
    assert [r.getMessage() for r in caplog.records] == [
        "answered 503 to 1 request(s) past the concurrency limit (10)",
        "answered 503 to 100 request(s) past the concurrency limit (10)",
    ]
