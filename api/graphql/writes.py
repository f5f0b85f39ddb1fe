"""What every mutation shares: validate first, then write in one transaction, or write nothing."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.problems import InvalidInput, Problem
from api.graphql.context import Info
from api.graphql.errors import UserError

T = TypeVar("T")


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
