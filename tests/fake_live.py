"""A fake live service (`api.live.contract.Live`) for the transports' tests, and the app with
it in its lifespan state, as the real lifespan puts the real one."""

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.live.contract import Ended
from api.pipeline.refusals import Refused, RequestCode

PATIENCE = 10.0  # seconds any one awaited event may take before a test fails


class FakeSubscription:
    def __init__(self, request: dict[str, Any], authorization: str | None) -> None:
        self.request = request
        self.authorization = authorization
        self.ended: Ended | None = None
        self.closed = asyncio.Event()
        self._queue: asyncio.Queue[bytes | Ended | Exception] = asyncio.Queue()

    async def next(self) -> bytes | None:
        if self.ended is not None:
            return None
        item = await self._queue.get()
        if isinstance(item, Exception):
            raise item
        if isinstance(item, Ended):
            self.ended = item
            return None
        return item

    async def close(self) -> None:
        self.closed.set()

    def push(self, title: str) -> None:
        change = {"cursor": title, "kind": "CREATED", "id": "1", "node": {"title": title}}
        self._queue.put_nowait(orjson.dumps({"data": {"bookChanged": change}}))

    def end(self, why: Ended) -> None:
        self._queue.put_nowait(why)

    def fail(self, fault: Exception) -> None:
        """A bug behind the contract: `next` raises it."""
        self._queue.put_nowait(fault)


class FakeLive:
    """Opens subscriptions only, refuses as told, and ends them all on shutdown."""

    def __init__(self) -> None:
        self.opened: asyncio.Queue[FakeSubscription] = asyncio.Queue()
        self.subscriptions: list[FakeSubscription] = []
        self.refusal: Refused | None = None
        self.shutdowns = 0

    async def open(self, request: dict[str, Any], authorization: str | None) -> FakeSubscription:
        if self.refusal is not None:
            raise self.refusal
        if not str(request.get("query", "")).lstrip().startswith("subscription"):
            raise Refused(RequestCode.BAD_REQUEST, "Only subscriptions are served here")
        subscription = FakeSubscription(request, authorization)
        self.subscriptions.append(subscription)
        self.opened.put_nowait(subscription)
        return subscription

    async def shutdown(self) -> None:
        self.shutdowns += 1
        for subscription in self.subscriptions:
            subscription.end(Ended.SHUTDOWN)

    async def next_opened(self) -> FakeSubscription:
        return await asyncio.wait_for(self.opened.get(), PATIENCE)


def with_live(app: ASGIApp, live: FakeLive | None) -> ASGIApp:
    """`app` with `live` in its lifespan state in place of its own (None: with none at all)."""

    def replace(state: dict[str, Any]) -> None:
        if live is None:
            state.pop("live", None)
        else:
            state["live"] = live

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            replace(scope["state"])
            await app(scope, receive, send)
            return

        async def sent(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                replace(scope["state"])  # where the server's shutdown finds it
            await send(message)

        await app(scope, receive, sent)

    return wrapped
