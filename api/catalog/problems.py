"""What can be wrong with a request's input, in terms a client can act on."""

from dataclasses import dataclass
from enum import StrEnum


class ProblemCode(StrEnum):
    """The codes every entity shares; `api.catalog.codes` adds those its description derives."""

    BLANK = "BLANK"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    CONTROL_CHARACTERS = "CONTROL_CHARACTERS"
    INVISIBLE_CHARACTERS = "INVISIBLE_CHARACTERS"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    TOO_MANY = "TOO_MANY"
    TAKEN = "TAKEN"  # a value that must be unique, already held by another row


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input field; `field` is its path within the input."""

    field: tuple[str, ...]
    message: str
    code: str  # a ProblemCode, or one derived from a description (`HAS_BOOKS`)


class InvalidValue(ValueError):
    """One value refused; carries its problem for `userErrors`.

    The one convention for refusing input: a check raises this, and whoever gathers the
    problems of a whole input (to report them all at once) catches it.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class InvalidInput(Exception):
    """Raised by data functions; the caller's transaction is rolled back and nothing is written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems
