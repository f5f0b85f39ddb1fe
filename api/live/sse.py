"""Subscriptions over Server-Sent Events: graphql-sse's distinct connections mode.

A GET or POST to /graphql that accepts `text/event-stream` opens one subscription and is
answered with a stream of `next` events, then `complete`. A request refused before the stream
starts is answered as the front door answers any refusal (a JSON body and its status), so a
client tells "refused" from "stream ended". Comments keep idle streams open through proxies.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from api.live.contract import Ended, Subscription
from api.live.options import TransportOptions
from api.live.streams import live_of, not_served, streams_of
from api.pipeline.media import Media, negotiate
from api.pipeline.refusals import Refused, not_an_operation, not_json
from api.pipeline.respond import Reply, send_reply
from api.unhandled import internal_error_body

log = logging.getLogger(__name__)
EVENT_STREAM = "text/event-stream"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx and its kin: pass each event on at once
]
HEARTBEAT = b":\n\n"
COMPLETE = b"event: complete\ndata:\n\n"
Refuse = Callable[[Refused, Media], Reply]


def wants_events(accept: str | None) -> bool:
    """Whether the client prefers an event stream to a JSON answer: graphql-sse sends just
    `text/event-stream`, while urql lists it after the JSON types for every query (so its
    queries stay JSON). Highest quality wins; on a tie, the earlier entry."""
    if not accept or EVENT_STREAM not in accept.lower():
        return False
    best: tuple[float, int, bool] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, *parameters = (part.strip().lower() for part in item.split(";"))
        if kind != EVENT_STREAM and negotiate(kind) is None:
            continue  # a type neither answer has
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > best[:2]):
            best = (quality, -position, kind == EVENT_STREAM)
    return best is not None and best[2]


def event(name: bytes, data: bytes) -> bytes:
    # JSON holds a line break only as whitespace, which an event's data line cannot carry.
    if b"\n" in data or b"\r" in data:
        data = data.replace(b"\r", b"").replace(b"\n", b"")
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def slow_consumer() -> bytes:
    error = {
        "message": "This stream fell too far behind and was closed; "
        "subscribe again with `after` set to the last cursor received",
        "extensions": {"code": "SLOW_CONSUMER"},
    }
    return event(b"next", orjson.dumps({"errors": [error]}))


async def serve_events(
    options: TransportOptions,
    scope: Scope,
    receive: Receive,
    send: Send,
    request: dict[str, Any] | None,
    body: bytes,
    refuse: Refuse,
) -> None:
    """One subscription as an event stream; `request` from a GET's URL, else in `body`."""
    media = Media.GRAPHQL_RESPONSE_JSON  # a refusal's status is what a stream client reads
    live = live_of(scope)
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization")
    try:
        if request is None:
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise not_json() from None
            if not isinstance(request, dict):
                raise not_an_operation()
        if live is None:
            raise not_served()
        subscription = await live.open(
            request, authorization.decode("latin-1") if authorization is not None else None
        )
    except Refused as refused:
        await send_reply(send, refuse(refused, media))
        return
    streams = streams_of(live)
    try:
        with streams.held():
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await _stream(options, subscription, receive, send, streams.stopping)
    finally:
        await subscription.close()


async def _stream(
    options: TransportOptions,
    subscription: Subscription,
    receive: Receive,
    send: Send,
    stopping: asyncio.Event,
) -> None:
    """Forward payloads, with a heartbeat between them, until the subscription ends, the
    process stops, or the client goes."""
    gone = asyncio.create_task(_disconnected(receive))
    stop = asyncio.create_task(stopping.wait())
    coming = asyncio.create_task(subscription.next())
    try:
        while True:
            done, _ = await asyncio.wait(
                {coming, gone, stop},
                timeout=options.heartbeat_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if gone in done:
                return  # nobody to write to
            if coming in done:
                try:
                    payload = coming.result()
                except Exception:  # a fault: said as a masked error, then the end
                    log.exception("Subscription failed")
                    await _write(send, event(b"next", internal_error_body()))
                    break
                if payload is None:
                    break
                await _write(send, event(b"next", payload))
                coming = asyncio.create_task(subscription.next())
            elif stop in done:
                break  # the process is stopping: `complete`, and the client resumes elsewhere
            else:
                await _write(send, HEARTBEAT)
        if subscription.ended is Ended.SLOW_CONSUMER:
            await _write(send, slow_consumer())
        await send({"type": "http.response.body", "body": COMPLETE, "more_body": False})
    finally:
        for task in (gone, stop, coming):
            task.cancel()


async def _write(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    """Returns once the client has gone (what is left of a GET's empty body is skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass
