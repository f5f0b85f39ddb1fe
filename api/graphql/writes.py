"""What every mutation shares: validate first, then write in one transaction, or write nothing."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.problems import InvalidInput, InvalidValue, Problem
from api.graphql.context import Info
from api.graphql.errors import UserError

T = TypeVar("T")
Validated = TypeVar("Validated")
Payload = TypeVar("Payload")


async def mutate(
    info: Info,
    validate: Callable[[list[Problem]], Validated],
    work: Callable[[AsyncSession, Validated], Awaitable[T]],
    respond: Callable[[T | None, list[UserError]], Payload],
) -> Payload:
    """The skeleton of every mutation: validate, write, answer with the payload.

    `validate` records every problem with the input, so a client sees them all at once, or
    raises `InvalidValue` for one that makes the rest moot (an id that is not one); with any,
    nothing is written. `work` runs in one transaction (see `write`).
    """
    problems: list[Problem] = []
    try:
        validated = validate(problems)
    except InvalidValue as invalid:
        problems.insert(0, invalid.problem)
    if problems:
        return respond(None, user_errors(problems))
    result, errors = await write(info, lambda session: work(session, validated))
    return respond(result, errors)


async def write(
    info: Info, work: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run `work` in its own transaction; an `InvalidInput` rolls it back into user errors."""
    try:
        async with info.context.db.write() as session:
            result = await work(session)
    except InvalidInput as invalid:
        return None, user_errors(invalid.problems)
    finally:
        info.context.forget_loaded()
    return result, []


def user_errors(problems: list[Problem]) -> list[UserError]:
    return [UserError.from_problem(problem) for problem in problems]
