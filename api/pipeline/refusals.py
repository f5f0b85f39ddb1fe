"""Why the front door refuses a request before any operation runs: one typed error each.

A refusal is a GraphQL *request error*: no `data`, one error with a message a person can act
on and an `extensions.code` a program can branch on. Its HTTP status is what the
graphql-response+json media type asks for; under plain application/json a well-formed
request is answered 200, as that media type's clients expect, except where the status is
the point (a shed request is 503 whatever was asked, so proxies and retries see it).
"""

from enum import Enum


class RequestCode(Enum):
    BAD_REQUEST = "BAD_REQUEST"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
    OPERATION_NAME_REQUIRED = "OPERATION_NAME_REQUIRED"
    OPERATION_NOT_FOUND = "OPERATION_NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    TOO_MANY = "TOO_MANY"
    SERVER_BUSY = "SERVER_BUSY"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"
    WRITE_OUTCOME_UNKNOWN = "WRITE_OUTCOME_UNKNOWN"
    DATABASE_NOT_MIGRATED = "DATABASE_NOT_MIGRATED"
    CURSOR_EXPIRED = "CURSOR_EXPIRED"  # a live subscription's `after`, older than retention
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"


# The status under application/graphql-response+json (and, for the HTTP-level ones, always).
STATUS = {
    RequestCode.BAD_REQUEST: 400,
    RequestCode.GRAPHQL_PARSE_FAILED: 400,
    RequestCode.GRAPHQL_VALIDATION_FAILED: 400,
    RequestCode.BAD_USER_INPUT: 400,
    RequestCode.DOCUMENT_TOO_LARGE: 413,
    RequestCode.OPERATION_NAME_REQUIRED: 400,
    RequestCode.OPERATION_NOT_FOUND: 400,
    RequestCode.UNAUTHENTICATED: 401,
    RequestCode.FORBIDDEN: 403,
    RequestCode.QUERY_TOO_COSTLY: 400,
    RequestCode.TOO_MANY: 400,
    RequestCode.SERVER_BUSY: 503,
    RequestCode.CURSOR_EXPIRED: 410,
    RequestCode.TOO_MANY_SUBSCRIPTIONS: 503,
    RequestCode.PERSISTED_QUERY_NOT_FOUND: 400,
    RequestCode.PERSISTED_QUERY_REQUIRED: 400,
    RequestCode.METHOD_NOT_ALLOWED: 405,
    RequestCode.DATABASE_UNAVAILABLE: 503,
    RequestCode.REQUEST_TIMEOUT: 408,
    RequestCode.PAYLOAD_TOO_LARGE: 413,
    RequestCode.IDEMPOTENCY_KEY_REUSED: 422,
    RequestCode.IDEMPOTENCY_KEY_IN_PROGRESS: 409,
    RequestCode.WRITE_OUTCOME_UNKNOWN: 503,
    RequestCode.DATABASE_NOT_MIGRATED: 503,
}
# Refusals whose status holds under application/json too: the request was not well-formed
# GraphQL over HTTP, or the server is shedding load.
ALWAYS_STATUS = frozenset(
    {
        RequestCode.BAD_REQUEST,
        RequestCode.DOCUMENT_TOO_LARGE,
        RequestCode.SERVER_BUSY,
        RequestCode.METHOD_NOT_ALLOWED,
        RequestCode.DATABASE_UNAVAILABLE,
        RequestCode.DATABASE_NOT_MIGRATED,
        RequestCode.REQUEST_TIMEOUT,
        RequestCode.PAYLOAD_TOO_LARGE,
        RequestCode.IDEMPOTENCY_KEY_REUSED,
        RequestCode.IDEMPOTENCY_KEY_IN_PROGRESS,
        RequestCode.WRITE_OUTCOME_UNKNOWN,
    }
)
# The outcome each refusal is counted under in the metrics and the request log.
OUTCOME = {
    RequestCode.GRAPHQL_PARSE_FAILED: "parse_error",
    RequestCode.GRAPHQL_VALIDATION_FAILED: "validation_error",
    RequestCode.UNAUTHENTICATED: "unauthenticated",
    RequestCode.FORBIDDEN: "forbidden",
    RequestCode.SERVER_BUSY: "shed",
}


class Refused(Exception):
    """The request is answered with these errors and nothing runs."""

    def __init__(
        self,
        code: RequestCode,
        message: str,
        *,
        errors: list[dict[str, object]] | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
        slow_down: bool = False,
    ) -> None:
        super().__init__(message)
        # Refused for what a client sends too much of (new documents, big anonymous bodies):
        # answered after a pause, so a client looping on it cannot loop fast.
        self.slow_down = slow_down
        self.reason = reason  # the metrics' reason for an HTTP rejection, when not the code
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.errors = errors or [{"message": message, "extensions": {"code": code.value}}]

    @property
    def outcome(self) -> str:
        return OUTCOME.get(self.code, "refused")


def not_json() -> Refused:
    return Refused(
        RequestCode.BAD_REQUEST,
        "The request body is not valid JSON (or holds invalid unicode)",
        reason="invalid_json",
    )


def not_an_operation() -> Refused:
    return Refused(
        RequestCode.BAD_REQUEST,
        "The body must be a GraphQL request object",
        reason="not_an_operation",
    )
