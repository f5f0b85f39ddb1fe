"""What a client gets when something fails that nothing else caught: a JSON 500 it can read.

Starlette's own last resort sits outside every middleware, so its plain-text 500 carries no
request id and no CORS headers: a browser app sees an opaque network error and the operator
has nothing to search the logs for. `UnhandledErrors` sits inside CORS and the request id,
so its 500 gets both; `last_resort` covers a failure in those middlewares themselves.
"""

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.observability.request_ids import request_id
from api.observability.requests import record_rejection
from api.replies import json_start

log = logging.getLogger("api.errors")
REQUEST_ID_HEADER = "X-Request-ID"


def internal_error_body() -> bytes:
    """The same error a GraphQL client gets for a masked failure, with the request id."""
    error = {
        "message": "Internal server error",
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id.get()},
    }
    return orjson.dumps({"errors": [error]})


class UnhandledErrors(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if started:  # half a response is out: only the server can end it, by closing
                raise
            record_rejection("unhandled_error")
            body = internal_error_body()
            await send(json_start(500, len(body)))
            await send({"type": "http.response.body", "body": body})


def last_resort(cors_origins: list[str]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's handler for a failure outside `UnhandledErrors`, with the same body.

    It answers from outside the CORS middleware, so it adds the CORS headers an allowed
    origin needs itself.
    """
    allowed = frozenset(cors_origins)

    async def handler(request: Request, _: Exception) -> Response:
        headers = {}
        made_id = request_id.get()
        if made_id:
            headers[REQUEST_ID_HEADER] = made_id
        origin = request.headers.get("origin")
        if origin is not None and origin in allowed:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = REQUEST_ID_HEADER
            headers["Vary"] = "Origin"
        return Response(internal_error_body(), 500, headers=headers, media_type="application/json")

    return handler
