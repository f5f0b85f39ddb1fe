"""Reading a request body once, whole, within a size and a time limit.

A client that disconnects mid-body, or sends it too slowly, gets nothing run: half a body is
never handed on as if it were all of it.
"""

import asyncio

from starlette.types import Receive, Scope

BODY_RECEIVED = "api.body_received"
"""A scope key the server (`api.serving.protocol`) sets once a request's whole body is in."""


class BodyNotReceived(Exception):
    """The client went away, or was too slow, before its body was complete."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def read_body(
    scope: Scope, receive: Receive, patience: float | None, most_bytes: int | None = None
) -> bytes:
    """The whole body; BodyNotReceived when the client left, was too slow, or sent more than
    `most_bytes` (then nothing more is read). A body the server already holds whole (most of
    them: it came with its head) is read without setting a timer."""
    if scope.get(BODY_RECEIVED) or patience is None:
        return await _collect(receive, most_bytes)
    try:
        async with asyncio.timeout(patience):
            return await _collect(receive, most_bytes)
    except TimeoutError:
        raise BodyNotReceived("body_timeout") from None


async def _collect(receive: Receive, most_bytes: int | None) -> bytes:
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyNotReceived("client_disconnected")
        chunk = message.get("body", b"")
        received += len(chunk)
        if most_bytes is not None and received > most_bytes:
            raise BodyNotReceived("anonymous_body_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
