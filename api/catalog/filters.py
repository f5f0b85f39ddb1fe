"""Building blocks for WHERE clauses shared by authors and books."""

import re


def ilike_pattern(fragment: str) -> str:
    """An ILIKE pattern (escape character `\\`) matching `fragment` anywhere, literally."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def like_fragment(pattern: str) -> str:
    """The fragment an `ilike_pattern` was made from."""
    return re.sub(r"\\(.)", r"\1", pattern[1:-1])


def searchable_characters(fragment: str) -> int:
    """How many letters and digits `fragment` holds: what a trigram index can search by.

    pg_trgm splits text into words of letters and digits and indexes their three-character
    runs; punctuation, spaces and wildcards give it nothing. A pattern with fewer than three
    of them (`ab`, `%%%`, `C++`) yields no trigram, and Postgres reads every row instead.
    """
    return sum(1 for character in fragment if character.isalnum())
