"""uvicorn's httptools protocol, bounded: a request head has a size and a time limit.

uvicorn 0.55 leaves both to the parser. httptools (llhttp) has no size limit at all: a 200 MB
header is buffered, then answered. h11 stops at 16 KiB but answers a plain-text 400, and neither
has a deadline for the head, so a client sending one header line every few seconds (slowloris)
holds its connection, and its slot under `limit_concurrency`, for ever. This subclass counts
the bytes of each head before the parser sees them, answers 431 with a JSON body past the
limit, and closes a connection whose head is not complete in time. It also answers the
concurrency limit (503, with `Retry-After`) and bytes that are not HTTP (400) in JSON, where
uvicorn answers plain text.

httptools rather than h11: it is uvicorn's default and several times faster per request, and
the limits are enforced here, not by the parser.
"""

import asyncio
import dataclasses
import logging
from typing import Any, ClassVar

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api.pipeline.body import BODY_RECEIVED
from api.settings import setting

log = logging.getLogger("api.http")

RETRY_BUSY_AFTER_SECONDS = 1
# After a 431 the rest of the head is still arriving: closing at once would make the kernel
# reset the connection, and a reset can discard the 431 before the client reads it. So the
# connection lingers, discarding what arrives, for a little time and a few bytes (nginx's
# lingering close); a client still sending past either is cut off.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = setting("http_max_header_bytes")
    header_timeout: float = setting("http_header_timeout")
    keepalive_timeout: float = setting("http_keepalive_timeout")
    limit_concurrency: int = setting("http_limit_concurrency")


def _error_body(message: str, code: str) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


BUSY_BODY = _error_body("The server is busy; retry shortly", "SERVER_BUSY")


class BusyLog:
    """One warning a second at most, with how many requests were turned away: under a flood a
    line per 503 would cost what the limit saves."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.turned_away = 0
        self.last: float | None = None

    def __call__(self, now: float, limit: int) -> None:
        self.turned_away += 1
        if self.last is not None and now - self.last < self.every:
            return
        log.warning(
            "answered 503 to %d request(s) past the concurrency limit (%d)",
            self.turned_away,
            limit,
        )
        self.turned_away, self.last = 0, now


busy_log = BusyLog()


async def answer_busy(scope: Scope, receive: Receive, send: Send) -> None:
    """503 for a request past the concurrency limit, before any of the app runs."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BUSY_BODY)).encode()),
                (b"retry-after", str(RETRY_BUSY_AFTER_SECONDS).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BUSY_BODY})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. Between requests it is reading a head: `_head_bytes` counts its bytes
    (None while a body is read or a response is made), and `_head_clock` closes the
    connection when the head takes too long.

    The count starts exactly at the first byte of a connection, and at the first byte after a
    request's body. A head pipelined in the same read as the previous request's body is
    counted from the next read on, so it may exceed the limit by one read (at most 256 KiB).
    """

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.timeout_keep_alive = self.limits.keepalive_timeout  # type: ignore[assignment]
        self.limit_concurrency = None  # checked in on_headers_complete, answered in JSON
        self._head_bytes: int | None = 0
        self._heads_read = 0
        self._head_clock: asyncio.TimerHandle | None = None
        self._lingering: int | None = None  # bytes discarded since a 431

    @classmethod
    def with_limits(cls, limits: HttpLimits) -> type["BoundedHttpToolsProtocol"]:
        """The class uvicorn instantiates per connection (it takes no extra arguments)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_clock()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        counted = self._head_bytes
        if counted is None:
            super().data_received(data)
            return
        heads_before = self._heads_read
        room = self.limits.max_header_bytes - counted
        if len(data) <= room:
            self._head_bytes = counted + len(data)
            super().data_received(data)
            # Most heads arrive in one read and need no clock; one still arriving gets it.
            if self._heads_read == heads_before and not self.transport.is_closing():
                self._start_head_clock()
            return
        self._head_bytes = self.limits.max_header_bytes
        super().data_received(data[:room])
        if self.transport.is_closing():  # the parser refused what it was given
            return
        if self._heads_read == heads_before:
            self._refuse_head()
        elif self.transport.get_protocol() is self:
            self.data_received(data[room:])  # a body, or the next head: counted again

    def on_headers_complete(self) -> None:
        self._heads_read += 1
        self._head_bytes = None
        self._stop_head_clock()
        self.app = answer_busy if self._busy() else self.config.loaded_app
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0  # what follows is the next request's head
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.more_body:
            # The whole body is in: reading it cannot wait, so it needs no deadline.
            cycle.scope[BODY_RECEIVED] = True

    def _busy(self) -> bool:
        limit = self.limits.limit_concurrency
        if len(self.connections) < limit and len(self.tasks) < limit:
            return False
        busy_log(self.loop.time(), limit)
        return True

    def _start_head_clock(self) -> None:
        if self._head_clock is None:
            self._head_clock = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _stop_head_clock(self) -> None:
        if self._head_clock is not None:
            self._head_clock.cancel()
            self._head_clock = None

    def _head_late(self) -> None:
        self._head_clock = None
        if not self.transport.is_closing():
            log.debug("closed a connection: no request head within %ss", self.limits.header_timeout)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, in JSON like every other error."""
        self._stop_head_clock()
        self._write_error(400, _error_body(msg, "BAD_REQUEST"))
        self.transport.close()

    def _write_error(self, status: int, body: bytes) -> None:
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)

    def _refuse_head(self) -> None:
        limit = self.limits.max_header_bytes
        log.info("answered 431 to a request head over %d bytes", limit)
        message = f"The request's headers are larger than {limit} bytes"
        self._write_error(431, _error_body(message, "REQUEST_HEADERS_TOO_LARGE"))
        self._stop_head_clock()
        self._lingering = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
