"""An entity's name as a field name, a Python name and in a sentence.

`BookSeries` is `bookSeries` as a field, `book_series` in Python (Strawberry turns it back into
camelCase) and "a book series" in a message: two-word names need the same care as one-word.
"""

import re

WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(name: str) -> str:
    """`BookSeries` -> `book_series`."""
    return WORD_START.sub("_", name).lower()


def lower_camel(name: str) -> str:
    """`BookSeries` -> `bookSeries`."""
    return name[:1].lower() + name[1:]


def words(name: str) -> str:
    """`BookSeries` -> `book series`."""
    return snake_case(name).replace("_", " ")


def with_article(noun: str) -> str:
    """`noun` with its indefinite article: "an author", "a book"."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
