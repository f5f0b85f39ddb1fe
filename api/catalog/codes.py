"""Every code a userError can carry: the shared ones, then those the descriptions derive.

A to-many relation adds `HAS_<RELATION>` (`HAS_BOOKS`): a delete refused while the row still
has rows there. A new relation brings its code with it; nobody writes it by hand.
"""

from enum import StrEnum
from typing import Any

from api.catalog.entities import ENTITIES
from api.catalog.problems import ProblemCode

# Enum's functional form, typed loosely: the derived members come from the descriptions.
_str_enum: Any = StrEnum


def derived_codes() -> list[str]:
    found = [r.has_rows_code for e in ENTITIES.values() for r in e.to_many]
    return list(dict.fromkeys(found))


USER_ERROR_CODES: type[StrEnum] = _str_enum(
    "UserErrorCode", [(c, c) for c in [*ProblemCode, *derived_codes()]]
)
