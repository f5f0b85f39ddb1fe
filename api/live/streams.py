"""The transport connections open on one live service, so a shutdown can end them first.

On SIGTERM uvicorn closes every WebSocket with 1012 and waits for every response to finish;
an SSE stream never does. So the server stops the live service first: each transport says
goodbye the way its clients resume from (1001, or the stream's `complete`), and the server
waits, briefly, for them to have said it before uvicorn's own shutdown begins.
"""

import asyncio
import weakref
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from api.live.contract import Live
from api.pipeline.refusals import Refused, RequestCode


class Streams:
    """How many transport connections are open, and whether they should end now."""

    def __init__(self) -> None:
        self.open = 0
        self.stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.open -= 1
            if self.open == 0:
                self._idle.set()

    async def stop(self, patience: float) -> bool:
        """Ask every connection to end; whether all did within `patience` seconds."""
        self.stopping.set()
        try:
            async with asyncio.timeout(patience):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def live_of(scope: MutableMapping[str, Any]) -> Live | None:
    """The live service in a request's lifespan state, when the app has one."""
    live: Live | None = (scope.get("state") or {}).get("live")
    return live


def not_served() -> Refused:
    return Refused(RequestCode.SERVER_BUSY, "Subscriptions are not served by this process")


_streams: "weakref.WeakKeyDictionary[Any, Streams]" = weakref.WeakKeyDictionary()


def streams_of(live: Live) -> Streams:
    """The connections of `live` (one registry per live service: tests run several)."""
    found = _streams.get(live)
    if found is None:
        found = _streams[live] = Streams()
    return found


async def shut_down(state: dict[str, Any], patience: float) -> bool:
    """End the live service in a lifespan's `state`, then wait for its transports' goodbyes.
    Whether every connection ended in time (nothing to end: True)."""
    live = state.get("live")
    if live is None:
        return True
    await live.shutdown()
    return await streams_of(live).stop(patience)
