"""How errors reach clients: typed user errors pass through, internals never do."""

import logging
from enum import Enum
from typing import Any

import asyncpg
import strawberry
from asgi_correlation_id import correlation_id
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from strawberry.extensions import MaskErrors

from api.catalog.codes import USER_ERROR_CODES
from api.catalog.problems import Problem
from api.db.reads import ReadTimedOut

log = logging.getLogger("api.errors")
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable; try again shortly"
QUERY_TIMEOUT_MESSAGE = (
    "The query was too expensive: it ran longer than the read time limit and was stopped. "
    "Ask for less (smaller pages, fewer nested connections, a narrower filter)"
)

UserErrorCode = strawberry.enum(
    USER_ERROR_CODES, name="UserErrorCode", description="Why an input was refused."
)


@strawberry.type(description="A problem with one field of a mutation's input.")
class UserError:
    field: list[str] = strawberry.field(description="Path to the input field, from `input`.")
    message: str
    code: UserErrorCode  # type: ignore[valid-type]

    @classmethod
    def from_problem(cls, problem: Problem) -> "UserError":
        code = USER_ERROR_CODES(problem.code)
        return cls(field=list(problem.field), message=problem.message, code=code)


class ErrorCode(Enum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    PATTERN_TOO_SHORT = "PATTERN_TOO_SHORT"  # a contains filter too short for its index
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    QUERY_TIMEOUT = "QUERY_TIMEOUT"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(Exception):
    """An error the client caused and can fix; its message is shown as written."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.extensions = {"code": code.value}


# SQLSTATEs meaning "no database to talk to right now": connection exceptions (class 08),
# shutdown and start-up (57P01-57P03), and too many connections (53300).
UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# query_canceled: the statement ran past its statement_timeout (the database is fine).
QUERY_CANCELED = "57014"


def _sqlstate(error: BaseException | None) -> str | None:
    while error is not None:
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str):
            return state
        error = error.__cause__
    return None


def is_query_timeout(error: BaseException | None) -> bool:
    """Whether a statement was stopped for running too long: the query, not the database."""
    if isinstance(error, ReadTimedOut):
        return True
    return _sqlstate(error.orig if isinstance(error, DBAPIError) else error) == QUERY_CANCELED


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` means the database cannot be reached now (not a bug of ours)."""
    if is_query_timeout(error):
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    state = _sqlstate(error.orig if isinstance(error, DBAPIError) else error)
    if state is not None and (state.startswith("08") or state in UNAVAILABLE_STATES):
        return True
    return isinstance(
        error,
        (
            OperationalError,
            InterfaceError,
            OSError,
            TimeoutError,
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.CannotConnectNowError,
        ),
    )


def unavailable_error(**location: Any) -> GraphQLError:
    return GraphQLError(
        DATABASE_UNAVAILABLE_MESSAGE,
        **location,
        extensions={
            "code": ErrorCode.DATABASE_UNAVAILABLE.value,
            "requestId": correlation_id.get(),
        },
    )


def query_timeout_error(**location: Any) -> GraphQLError:
    return GraphQLError(
        QUERY_TIMEOUT_MESSAGE,
        **location,
        extensions={"code": ErrorCode.QUERY_TIMEOUT.value, "requestId": correlation_id.get()},
    )


class ErrorPolicy(MaskErrors):
    """Mask every execution error not raised on purpose, and log it in full.

    On purpose means a `ClientError` or a `GraphQLError` (strawberry's permission errors).
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=self._should_mask)

    @staticmethod
    def _should_mask(error: GraphQLError) -> bool:
        original = error.original_error
        return error.path is not None and not isinstance(original, (ClientError, GraphQLError))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        location: dict[str, Any] = {
            "nodes": error.nodes,
            "source": error.source,
            "positions": error.positions,
            "path": error.path,
        }
        if is_query_timeout(original):
            log.warning("query ran past the read budget at %s", error.path)
            return query_timeout_error(**location)
        if is_database_unavailable(original):
            log.warning("database unavailable at %s: %r", error.path, original)
            return unavailable_error(**location)
        log.error("unexpected error at %s", error.path, exc_info=original)
        return GraphQLError(
            "Internal server error",
            **location,
            extensions={
                "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                "requestId": correlation_id.get(),
            },
        )
