"""HTTP-level guards in front of GraphQL: body size, content type, method.

They answer before any parsing, so a huge or odd body costs nothing, and browsers cannot
send a mutation as a "simple" cross-site request: a POST must be application/json (which a
form cannot send without a CORS preflight), and a GET may only run a query (the front door
answers a mutation over GET with 405 before anything runs).
"""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability.requests import record_rejection
from api.replies import json_start

JSON_TYPES = ("application/json", "application/graphql-response+json")


class BodyTooLarge(Exception):
    pass


ALLOWED = b"GET, POST, OPTIONS"
CODES = {413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 405: "METHOD_NOT_ALLOWED"}


def _reply(status: int, message: str) -> tuple[Message, Message]:
    error = {"message": message, "extensions": {"code": CODES.get(status, "BAD_REQUEST")}}
    body = json.dumps({"errors": [error]}).encode()
    start = json_start(status, len(body))
    if status == 405:
        start["headers"].append((b"allow", ALLOWED))
    return start, {"type": "http.response.body", "body": body}


class GraphQLRequestGuard:
    def __init__(self, app: ASGIApp, *, path: str, max_body_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is not None:
            await self._send(send, *problem)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._send(send, *self._too_large())

    def _too_large(self) -> tuple[int, str, str]:
        return 413, f"Request body is larger than {self.max_body_bytes} bytes", "body_too_large"

    def _problem(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, message, reason for the metrics) when the request is refused here."""
        method = scope["method"]
        if method == "POST":
            length = content_type_header = None
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value
                elif name == b"content-type":
                    content_type_header = value
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                return self._too_large()
            content_type = (content_type_header or b"").decode("latin-1").lower()
            if content_type.split(";")[0].strip() not in JSON_TYPES:
                return 415, "Send GraphQL requests as application/json", "unsupported_media_type"
        elif method not in ("GET", "OPTIONS", "HEAD"):
            return (
                405,
                f"Method {method[:20]} is not allowed; GET a query or POST application/json",
                "method_not_allowed",
            )
        return None

    @staticmethod
    async def _send(send: Send, status: int, message: str, reason: str) -> None:
        record_rejection(reason)
        start, body = _reply(status, message)
        await send(start)
        await send(body)
