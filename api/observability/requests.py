"""One log line and one metrics sample per request, with what GraphQL and the database did."""

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db.statements import statement_counter
from api.observability.metrics import Metrics

log = logging.getLogger("api.request")


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


class RequestLogMiddleware:
    """Pure ASGI, so it sees the final status of every request, streaming or not."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = OperationRecord()
        token = _record.set(record)
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with statement_counter() as statements:
                await self.app(scope, receive, send_with_status)
        finally:
            _record.reset(token)
            seconds = time.perf_counter() - started
            if status >= 500:
                outcome = "error"
            else:
                outcome = record.outcome or ("ok" if status < 400 else "http_error")
            if scope["path"] == "/graphql" and record.operation is not None:
                self.metrics.observe(
                    operation=record.operation,
                    outcome=outcome,
                    seconds=seconds,
                    statements=statements.count,
                )
            elif scope["path"] == "/graphql" and status >= 400:
                self.metrics.reject(status=status, reason=record.rejection or "other")
            if log.isEnabledFor(logging.INFO):  # building its arguments alone costs a few µs
                log.info(
                    "%s %s %d %s %s %.1fms %d sql",
                    scope["method"],
                    scope["path"],
                    status,
                    record.operation or "-",
                    outcome,
                    seconds * 1000,
                    statements.count,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "operation": record.operation,
                        "outcome": outcome,
                        "duration_ms": round(seconds * 1000, 2),
                        "sql_statements": statements.count,
                    },
                )
