"""The /graphql endpoint: planned queries answered first, everything else by Strawberry."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.graphql.planner.fastpath import QueryPlans, serve_planned
from api.replies import json_start

CHUNK = 64 * 1024


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the next app, then defers to the client."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class GraphQLEndpoint:
    def __init__(self, view: ASGIApp) -> None:
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state") or {}
        plans = state.get("query_plans")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not isinstance(plans, QueryPlans)
        ):
            await self.view(scope, receive, send)
            return
        body = await _read_body(receive)
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            None,
        )
        response = await serve_planned(plans, state["read_pool"], body, authorization)
        if response is None:
            await self.view(scope, _replay(body, receive), send)
            return
        await send(json_start(200, len(response)))
        # Large bodies go out in chunks: the server waits for the socket to drain between them,
        # so it never holds a second copy of a big response in its write buffer.
        for start in range(0, len(response), CHUNK):
            more = start + CHUNK < len(response)
            chunk = response[start : start + CHUNK]
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        if not response:
            await send({"type": "http.response.body", "body": b""})
