"""How errors reach clients: typed user errors pass through, internals never do."""

import logging
from enum import Enum
from typing import Any

import asyncpg
import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from strawberry.extensions import MaskErrors

from api.catalog.codes import USER_ERROR_CODES
from api.catalog.problems import Problem
from api.db.reads import ReadTimedOut
from api.observability.request_ids import request_id

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
    DATABASE_NOT_MIGRATED = "DATABASE_NOT_MIGRATED"
    DATABASE_BUSY = "DATABASE_BUSY"
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
# lock_not_available: a statement gave up waiting for a lock (lock_timeout): busy, retry.
LOCK_NOT_AVAILABLE = "55P03"
DATABASE_BUSY_MESSAGE = (
    "The database was busy (another transaction held a lock this needed); retry shortly"
)
# undefined_table, undefined_column: the database is older than this code (not migrated).
NOT_MIGRATED_STATES = frozenset({"42P01", "42703"})
DATABASE_NOT_MIGRATED_MESSAGE = (
    "The database is not migrated to this version of the service; the operator must run "
    "`python -m api migrate`"
)


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


def is_lock_wait(error: BaseException | None) -> bool:
    """Whether a statement was stopped while waiting on a lock: busy, not too expensive."""
    return _sqlstate(error.orig if isinstance(error, DBAPIError) else error) == LOCK_NOT_AVAILABLE


def is_not_migrated(error: BaseException | None) -> bool:
    """Whether the database lacks a table or column this code uses: run migrations."""
    return _sqlstate(error.orig if isinstance(error, DBAPIError) else error) in NOT_MIGRATED_STATES


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
            "requestId": request_id.get(),
        },
    )


def query_timeout_error(**location: Any) -> GraphQLError:
    return GraphQLError(
        QUERY_TIMEOUT_MESSAGE,
        **location,
        extensions={"code": ErrorCode.QUERY_TIMEOUT.value, "requestId": request_id.get()},
    )


def database_busy_error(**location: Any) -> GraphQLError:
    return GraphQLError(
        DATABASE_BUSY_MESSAGE,
        **location,
        extensions={"code": ErrorCode.DATABASE_BUSY.value, "requestId": request_id.get()},
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
        if is_lock_wait(original):  # waited on someone else's lock: retryable, not our bug
            log.warning("gave up waiting on a lock at %s", error.path)
            return database_busy_error(**location)
        if is_not_migrated(original):  # one line: the fix is the operator's, not a bug of ours
            log.error("database not migrated at %s: %s", error.path, original)
            return GraphQLError(
                DATABASE_NOT_MIGRATED_MESSAGE,
                **location,
                extensions={
                    "code": ErrorCode.DATABASE_NOT_MIGRATED.value,
                    "requestId": request_id.get(),
                },
            )
        if is_database_unavailable(original):
            log.warning("database unavailable at %s: %r", error.path, original)
            return unavailable_error(**location)
        log.error("unexpected error at %s", error.path, exc_info=original)
        return GraphQLError(
            "Internal server error",
            **location,
            extensions={
                "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                "requestId": request_id.get(),
            },
        )
