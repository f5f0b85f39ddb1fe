"""What can be wrong with a request's input, in terms a client can act on."""

from dataclasses import dataclass
from enum import Enum


class ProblemCode(Enum):
    BLANK = "BLANK"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    CONTROL_CHARACTERS = "CONTROL_CHARACTERS"
    INVISIBLE_CHARACTERS = "INVISIBLE_CHARACTERS"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    HAS_BOOKS = "HAS_BOOKS"
    TOO_MANY = "TOO_MANY"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input field; `field` is its path within the input."""

    field: tuple[str, ...]
    message: str
    code: ProblemCode


class InvalidInput(Exception):
    """Raised by data functions; the caller's transaction is rolled back and nothing is written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems
