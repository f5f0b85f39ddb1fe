"""Seeds validated a column at a time say what validating each field in turn says."""

import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.catalog.problems import InvalidValue, Problem
from api.catalog.seeding import AUTHOR_FIELDS, BOOK_FIELDS, BOOKS, seed_rows
from api.catalog.text import INVISIBLE, clean_text, has_refused_characters, plain_texts

# Mostly ordinary text, with the characters each rule is about mixed in.
TRICKY = " \t\n\r\u0000\u0007\u00ad\u200b\u200d\u202e\u2028\u3000\ufeff\ufe0f\U0001f4da"
texts = st.text(alphabet=st.sampled_from('ab Zé東"\\' + TRICKY), max_size=12) | st.sampled_from(
    ["", " ", "Plain title", "x" * 101, "x" * 100, " y" * 60]
)


@given(st.text())
def test_printable_text_passes_the_per_character_rules(value: str) -> None:
    """Why `clean_text` may skip them: printable text has no refused or invisible (Cf)
    characters, so once trimmed it is blank only when empty."""
    text = value.strip()
    if text.isprintable():
        assert not has_refused_characters(text, multiline=False)
        kept = "".join(ch for ch in text if unicodedata.category(ch) not in INVISIBLE)
        assert kept == text
        assert bool(kept.strip()) == bool(text)


@given(st.lists(texts, max_size=6), st.sampled_from([1, 5, 100]))
def test_plain_texts_are_what_clean_text_keeps(values: list[str], limit: int) -> None:
    fast = plain_texts(values, max_length=limit)
    if fast is None:
        return
    slow = [clean_text(v, field=("f",), max_length=limit) for v in values]  # raises none
    assert fast == slow


def field_by_field(authors: list[dict[str, Any]]) -> tuple[list[Problem], list[Any]]:
    """The problems and values of validating each field of each entry in turn."""
    problems: list[Problem] = []
    values: list[Any] = []

    def clean(fields: Any, given: dict[str, Any], path: tuple[str, ...]) -> None:
        for field in fields:
            try:
                values.append(field.clean(given.get(field.name), (*path, field.name)))
            except InvalidValue as invalid:
                problems.append(invalid.problem)

    for index, author in enumerate(authors):
        clean(AUTHOR_FIELDS, author, ("authors", str(index)))
        for number, book in enumerate(author[BOOKS.name]):
            clean(BOOK_FIELDS, book, ("authors", str(index), BOOKS.name, str(number)))
    return problems, values


books = st.fixed_dictionaries(
    {"title": texts},
    optional={"publishedYear": st.none() | st.sampled_from([999, 1000, 2024, 2100, 2101])},
)
authors = st.fixed_dictionaries(
    {"name": texts, BOOKS.name: st.lists(books, max_size=3)},
    optional={"bio": st.none() | texts, "country": st.none() | texts},
)


@settings(max_examples=300)
@given(st.lists(authors, max_size=4))
def test_a_seed_is_validated_as_field_by_field(seed: list[dict[str, Any]]) -> None:
    problems: list[Problem] = []
    rows = seed_rows(seed, problems)

    expected_problems, expected_values = field_by_field(seed)
    assert problems == expected_problems
    if problems:
        return
    values: list[Any] = []
    for index, author in enumerate(seed):
        values += [rows.authors[f.key][index] for f in AUTHOR_FIELDS]
        for number in range(len(author[BOOKS.name])):
            book = [i for i, a in enumerate(rows.book_authors) if a == index][number]
            values += [rows.books[f.key][book] for f in BOOK_FIELDS]
    assert values == expected_values
