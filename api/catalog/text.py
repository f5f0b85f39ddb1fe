"""Validation of free text fields: the rules every name, bio and title follows."""

import unicodedata
from typing import Any

from api.catalog.invisible import first_invisible
from api.catalog.problems import InvalidValue, Problem, ProblemCode

ALLOWED_CONTROLS_MULTILINE = frozenset("\r\n\t")
# Control characters, unpaired surrogates (not encodable as UTF-8), line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
INVISIBLE = frozenset({"Cf"})  # zero-width and format characters: a name of only these is blank


def has_refused_characters(text: str, *, multiline: bool = False) -> bool:
    allowed = ALLOWED_CONTROLS_MULTILINE if multiline else frozenset()
    return any(unicodedata.category(ch) in REFUSED_CATEGORIES and ch not in allowed for ch in text)


def clean_text(
    value: str | None,
    *,
    field: tuple[str, ...],
    max_length: int,
    required: bool = True,
    multiline: bool = False,
) -> str | None:
    """`value` with surrounding whitespace removed; `InvalidValue` saying what is wrong.

    An optional field given as blank text is stored as NULL, since "" says nothing more.
    """
    if value is None:
        return None
    text = value.strip()
    label = field[-1]
    # Printable text (checked in C) has no control, format or separator character but the
    # space: the per-character checks below could only pass, and the text is blank iff empty.
    printable = text.isprintable()
    if not (
        text
        if printable
        else "".join(ch for ch in text if unicodedata.category(ch) not in INVISIBLE).strip()
    ):
        if required:
            raise InvalidValue(Problem(field, f"{label} must not be blank", ProblemCode.BLANK))
        return None
    if not printable and has_refused_characters(text, multiline=multiline):
        raise InvalidValue(
            Problem(
                field,
                f"{label} must not contain control characters or invalid unicode",
                ProblemCode.CONTROL_CHARACTERS,
            )
        )
    invisible = None if text.isascii() else first_invisible(text)  # none is ASCII
    if invisible is not None:
        raise InvalidValue(
            Problem(
                field,
                f"{label} must not contain invisible or text-direction characters "
                f"(U+{ord(text[invisible]):04X} at position {invisible + 1})",
                ProblemCode.INVISIBLE_CHARACTERS,
            )
        )
    if len(text) > max_length:
        raise InvalidValue(
            Problem(
                field,
                f"{label} is {len(text)} characters long; the limit is {max_length}",
                ProblemCode.TOO_LONG,
            )
        )
    return text


def plain_texts(values: list[Any], *, max_length: int) -> list[str] | None:
    """Many values at once, when each is text that `clean_text` keeps as it is once trimmed.

    That is printable ASCII, not blank, within `max_length`: a seed's usual titles and names,
    checked a column at a time in C. None when any value is not like that (or not text);
    then each value goes through `clean_text`, which says what is wrong with it.
    """
    if not all(type(value) is str for value in values):
        return None
    trimmed = [value.strip() for value in values]
    joined = "".join(trimmed)
    if not (joined.isascii() and joined.isprintable() and all(trimmed)):
        return None
    if max(map(len, trimmed), default=0) > max_length:
        return None
    return trimmed


MAX_FILTER_TEXT = 200


def filter_text_problem(value: str, argument: str) -> str | None:
    """Why filter text cannot be compared in Postgres (too long, NUL, …), or None if it can."""
    if len(value) > MAX_FILTER_TEXT or has_refused_characters(value):
        return (
            f"`{argument}` must be at most {MAX_FILTER_TEXT} characters, "
            "without control characters or invalid unicode"
        )
    return None
