"""Subscriptions over a WebSocket at /graphql, in graphql-transport-ws (the `graphql-ws`
library's protocol, spoken by Apollo's GraphQLWsLink, urql and Relay).

One connection carries many subscriptions, each opened through the live service (the same
front door as a query) and pumped by a task of its own; one lock keeps their frames whole.
The close codes are the library's, so its clients know which failures to retry: a server
going away (1001) and a slow consumer (1013) are retried, and the client resumes by cursor.
"""

import asyncio
import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from api.live.contract import Ended, Subscription
from api.live.options import TransportOptions
from api.live.streams import live_of, not_served, streams_of
from api.pipeline.refusals import Refused

log = logging.getLogger(__name__)
PROTOCOL = "graphql-transport-ws"
MAX_REASON_BYTES = 123  # what a close frame can carry


class Close(IntEnum):
    GOING_AWAY = 1001
    TRY_AGAIN_LATER = 1013
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    SUBPROTOCOL_NOT_ACCEPTABLE = 4406
    TIMEOUT = 4408
    SUBSCRIBER_ALREADY_EXISTS = 4409
    TOO_MANY_INITIALISATION_REQUESTS = 4429
    INTERNAL_SERVER_ERROR = 4500


class Closing(Exception):
    """The connection is to be closed with this code and reason."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def authorization_of(payload: dict[str, Any], upgrade: str | None) -> str | None:
    """The credentials of connection_init's payload (`authorization`, or `headers`'
    `Authorization`, as graphql-ws clients put them), else the upgrade request's header."""
    headers = payload.get("headers")
    found = payload.get("authorization", payload.get("Authorization"))
    if found is None and isinstance(headers, dict):
        found = headers.get("authorization", headers.get("Authorization"))
    if found is None:
        return upgrade
    if not isinstance(found, str):
        raise Closing(Close.BAD_REQUEST, "The authorization in connection_init must be a string")
    return found


@dataclass(frozen=True)
class GraphQLWebSocket:
    """The ASGI app for the WebSocket route at /graphql."""

    options: TransportOptions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Connection(self.options, scope, receive, send).run()


class Connection:
    """One client's socket, from its upgrade to its close."""

    def __init__(
        self, options: TransportOptions, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.options = options
        self.scope = scope
        self.receive = receive
        self._send = send
        self.live = live_of(scope)
        self.authorization: str | None = None
        self.initialised = False
        self.acknowledged = False
        self.heard = True  # anything received since the last ping
        self.running: dict[str, asyncio.Task[None]] = {}
        self.lock = asyncio.Lock()
        self.finished = False  # closed, or the client went: nothing more is sent
        self.closed = asyncio.Event()  # set once nothing more will be sent

    async def run(self) -> None:
        if (await self.receive())["type"] != "websocket.connect":
            return
        if PROTOCOL not in self.scope.get("subprotocols", ()):
            await self._send({"type": "websocket.accept"})
            await self.close(Close.SUBPROTOCOL_NOT_ACCEPTABLE, "Subprotocol not acceptable")
            return
        await self._send({"type": "websocket.accept", "subprotocol": PROTOCOL})
        if self.live is None:
            await self._serve()
            return
        streams = streams_of(self.live)
        with streams.held():
            if streams.stopping.is_set():
                await self.close(Close.GOING_AWAY, "Server shutting down")
                return
            stopping = asyncio.create_task(streams.stopping.wait())
            try:
                await self._serve(stopping)
            finally:
                stopping.cancel()

    async def _serve(self, stopping: "asyncio.Task[Any] | None" = None) -> None:
        reading = asyncio.create_task(self._read())
        closed = asyncio.create_task(self.closed.wait())
        beating = asyncio.create_task(self._heartbeat())
        watched = {reading, closed, *([stopping] if stopping else [])}
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                await self.close(Close.GOING_AWAY, "Server shutting down")
            elif reading in done and (failure := reading.exception()) is not None:
                if isinstance(failure, Closing):
                    await self.close(failure.code, failure.reason)
                else:
                    log.error("WebSocket connection failed", exc_info=failure)
                    await self.close(Close.INTERNAL_SERVER_ERROR, "Internal server error")
        finally:
            tasks = (reading, closed, beating, *self.running.values())
            for task in tasks:
                task.cancel()
            # Each subscription's task closes its subscription as it ends.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async with asyncio.timeout(self.options.init_timeout_seconds):
                while not self.initialised:
                    if not await self._receive_one():
                        return
        except TimeoutError:
            raise Closing(Close.TIMEOUT, "Connection initialisation timeout") from None
        while await self._receive_one():
            pass

    async def _receive_one(self) -> bool:
        """Handle one frame; False once the client has gone."""
        message: Message = await self.receive()
        if message["type"] == "websocket.disconnect":
            self.finished = True
            self.closed.set()
            return False
        self.heard = True
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Closing(Close.BAD_REQUEST, "Invalid message received") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise Closing(Close.BAD_REQUEST, "Invalid message received")
        await self._handle(frame)
        return True

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        payload = frame.get("payload")
        if kind == "connection_init":
            if self.initialised:
                raise Closing(
                    Close.TOO_MANY_INITIALISATION_REQUESTS, "Too many initialisation requests"
                )
            if not isinstance(payload, dict | None):
                raise Closing(Close.BAD_REQUEST, "Invalid message received")
            self.initialised = True
            upgrade = dict(self.scope.get("headers", ())).get(b"authorization")
            self.authorization = authorization_of(
                payload or {}, upgrade.decode("latin-1") if upgrade is not None else None
            )
            await self.send({"type": "connection_ack"})
            self.acknowledged = True
        elif kind == "ping":
            pong = {"type": "pong"}
            if isinstance(payload, dict):
                pong["payload"] = payload  # type: ignore[assignment]
            await self.send(pong)
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._subscribe(frame.get("id"), payload)
        elif kind == "complete":
            id = frame.get("id")
            if not isinstance(id, str):
                raise Closing(Close.BAD_REQUEST, "Invalid message received")
            task = self.running.get(id)
            if task is not None:
                task.cancel()  # the client completed it: nothing more is sent for its id
        else:
            raise Closing(Close.BAD_REQUEST, f"Unexpected message of type {kind[:40]} received")

    async def _subscribe(self, id: Any, payload: Any) -> None:
        if not isinstance(id, str) or not id or not isinstance(payload, dict):
            raise Closing(Close.BAD_REQUEST, "Invalid message received")
        if not self.acknowledged:
            raise Closing(Close.UNAUTHORIZED, "Unauthorized")
        if id in self.running:
            raise Closing(
                Close.SUBSCRIBER_ALREADY_EXISTS, f"Subscriber for {id[:60]} already exists"
            )
        if len(self.running) >= self.options.max_subscriptions_per_connection:
            limit = self.options.max_subscriptions_per_connection
            error = {
                "message": f"A connection may hold at most {limit} subscriptions; "
                "complete one or open another connection",
                "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
            }
            await self.send({"id": id, "type": "error", "payload": [error]})
            return
        task = asyncio.create_task(self._pump(id, payload))
        self.running[id] = task
        task.add_done_callback(lambda _: self._forget(id, task))

    def _forget(self, id: str, task: "asyncio.Task[None]") -> None:
        if self.running.get(id) is task:
            del self.running[id]

    async def _pump(self, id: str, request: dict[str, Any]) -> None:
        try:
            await self._forward(id, request)
        except Exception:  # a fault, not a refusal: graphql-ws closes with 4500
            log.exception("Subscription %s failed", id[:60])
            await self.close(Close.INTERNAL_SERVER_ERROR, "Internal server error")

    async def _forward(self, id: str, request: dict[str, Any]) -> None:
        """Open one subscription and forward its payloads until it ends."""
        try:
            if self.live is None:
                raise not_served()
            subscription: Subscription = await self.live.open(request, self.authorization)
        except Refused as refused:
            await self.send({"id": id, "type": "error", "payload": refused.errors})
            return
        try:
            head = b'{"id":' + orjson.dumps(id) + b',"type":"next","payload":'
            while (body := await subscription.next()) is not None:
                await self.send_text(head + body + b"}")
        finally:
            await subscription.close()
        ended = subscription.ended
        if ended is Ended.SHUTDOWN:
            await self.close(Close.GOING_AWAY, "Server shutting down")
        elif ended is Ended.SLOW_CONSUMER:
            await self.close(Close.TRY_AGAIN_LATER, "SLOW_CONSUMER")
        else:
            await self.send({"id": id, "type": "complete"})

    async def _heartbeat(self) -> None:
        """A ping every interval; a client that answered nothing since the last one has
        gone (a graphql-ws client pongs each ping by itself)."""
        while True:
            await asyncio.sleep(self.options.heartbeat_seconds)
            if not self.acknowledged:
                continue  # the init timeout watches this stretch
            if not self.heard:
                await self.close(Close.TIMEOUT, "Pong not received")
                return
            self.heard = False
            await self.send({"type": "ping"})

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps(frame))

    async def send_text(self, text: bytes) -> None:
        async with self.lock:
            if not self.finished:
                await self._deliver({"type": "websocket.send", "text": text.decode()})

    async def close(self, code: Close, reason: str) -> None:
        """Close once; later frames, and later closes, are dropped."""
        async with self.lock:
            if self.finished:
                return
            self.finished = True
            short = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
            try:
                await self._deliver({"type": "websocket.close", "code": int(code), "reason": short})
            finally:
                self.closed.set()

    async def _deliver(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError:  # the client vanished mid-send (uvicorn's ClientDisconnected)
            self.finished = True
            self.closed.set()
