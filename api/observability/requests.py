"""One log line and one metrics sample per request, with what GraphQL and the database did."""

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.db.statements import statement_counter
from api.observability.clients import client_of
from api.observability.metrics import Metrics
from api.observability.request_ids import request_id, with_request_id

log = logging.getLogger("api.request")

# A request whose client went away before it was answered: nginx's status for it, since
# HTTP has none. Logged and counted as a client error, not as the server's 500.
CLIENT_DISCONNECTED = "client_disconnected"
CLIENT_CLOSED_REQUEST = 499
MAX_LOGGED = 200  # characters of a path, an operation name or a client name in the log


def capped(text: str) -> str:
    """`text`, or its first MAX_LOGGED characters and how long it was."""
    if len(text) <= MAX_LOGGED:
        return text
    return f"{text[:MAX_LOGGED]}…[{len(text)} characters]"


@dataclass
class OperationRecord:
    """Filled in by the GraphQL extension, read by the middleware once the response is sent."""

    operation: str | None = None
    outcome: str | None = None
    rejection: str | None = None  # why the request was refused before any operation ran


_record: ContextVar[OperationRecord | None] = ContextVar("operation_record", default=None)


def record_operation(operation: str, outcome: str) -> None:
    """The operation the front door ran (or refused), and how it went."""
    record = _record.get()
    if record is not None:
        record.operation, record.outcome = operation, outcome


def record_rejection(reason: str) -> None:
    """For requests refused at the HTTP level (guards, unreadable bodies): one of a fixed set
    of reasons, never client text, since it becomes a metrics label."""
    record = _record.get()
    if record is not None:
        record.rejection = reason


class RequestLogMiddleware(HttpMiddleware):
    """Pure ASGI, so it sees the final status of every request, streaming or not.

    It also gives each request, and each WebSocket, its id (`request_ids`): one step of the
    stack rather than two, as every step costs each request a call and a wrapped `send`.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, ids: Callable[[], str]) -> None:
        super().__init__(app)
        self.metrics = metrics
        self.ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            request_id.set(self.ids())
        await super().__call__(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = OperationRecord()
        token = _record.set(record)
        made_id = self.ids()
        request_id.set(made_id)  # kept after the answer: the last-resort handler reads it
        status = 500
        responded = False
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                with_request_id(message, made_id)
            await send(message)

        try:
            with statement_counter() as statements:
                await self.app(scope, receive, send_with_status)
        finally:
            _record.reset(token)
            seconds = time.perf_counter() - started
            if not responded and record.rejection == CLIENT_DISCONNECTED:
                status = CLIENT_CLOSED_REQUEST  # the client's doing, not a server error
            if status >= 500:
                outcome = "error"
            else:
                outcome = record.outcome or ("ok" if status < 400 else "http_error")
            graphql = scope["path"] == "/graphql"
            if graphql and record.operation is not None:
                self.metrics.observe(
                    operation=record.operation,
                    outcome=outcome,
                    seconds=seconds,
                    statements=statements.count,
                )
            elif graphql and status >= 400:
                self.metrics.reject(status=status, reason=record.rejection or "other")
            client = client_of(scope["headers"])
            if graphql:
                self.metrics.count_client(client.name, client.version)
            if log.isEnabledFor(logging.INFO):  # building its arguments alone costs a few µs
                path = capped(scope["path"])
                operation = None if record.operation is None else capped(record.operation)
                message = "%s %s %d %s %s %.1fms %d sql"
                args: list[object] = [
                    scope["method"],
                    path,
                    status,
                    operation or "-",
                    outcome,
                    seconds * 1000,
                    statements.count,
                ]
                fields: dict[str, object] = {
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "operation": operation,
                    "outcome": outcome,
                    "duration_ms": round(seconds * 1000, 2),
                    "sql_statements": statements.count,
                }
                if client.name is not None or client.version is not None:
                    name, version = capped(client.name or "-"), capped(client.version or "-")
                    message += " client=%s/%s"
                    args += [name, version]
                    fields |= {"client_name": name, "client_version": version}
                if client.request_id is not None:
                    message += " client_request_id=%s"
                    args.append(client.request_id)
                    fields["client_request_id"] = client.request_id
                log.info(message, *args, extra=fields)
