"""Validation of free text fields: the rules every name, bio and title follows."""

import unicodedata

from api.catalog.problems import Problem, ProblemCode

ALLOWED_CONTROLS_MULTILINE = frozenset("\n\t")


def clean_text(
    value: str | None,
    *,
    field: tuple[str, ...],
    max_length: int,
    problems: list[Problem],
    required: bool = True,
    multiline: bool = False,
) -> str | None:
    """`value` with surrounding whitespace removed, or None after recording a problem.

    An optional field given as blank text is stored as NULL, since "" says nothing more.
    """
    if value is None:
        return None
    text = value.strip()
    label = field[-1]
    if not text:
        if required:
            problems.append(Problem(field, f"{label} must not be blank", ProblemCode.BLANK))
        return None
    allowed = ALLOWED_CONTROLS_MULTILINE if multiline else frozenset()
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        problems.append(
            Problem(
                field,
                f"{label} must not contain control characters",
                ProblemCode.CONTROL_CHARACTERS,
            )
        )
        return None
    if len(text) > max_length:
        problems.append(
            Problem(
                field,
                f"{label} is {len(text)} characters long; the limit is {max_length}",
                ProblemCode.TOO_LONG,
            )
        )
        return None
    return text
