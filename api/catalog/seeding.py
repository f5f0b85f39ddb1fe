"""Writing a whole catalogue in one transaction, for seed scripts: validated a column at a
time, written in one statement.

A seed carries up to 11,000 rows. Validating them one field at a time and inserting them as
many-row VALUES cost three times what Postgres needs to store them, so both happen in bulk
here: each column's values are checked together, with the description's own rules (see
`clean_column`), and sent as one array per column; one statement unnests them into both
tables (see `written`), each table's rows in the order given, so that their serial ids
ascend in that order (Postgres draws them as the ordered rows are inserted, which SQLAlchemy's
own bulk inserts rely on too). The resolver and the query planner both use these pieces.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Integer, Text, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import CTE, TableValuedAlias

from api.catalog import records
from api.catalog.describe import Entity, Field, Kind, Relation
from api.catalog.entities import AUTHOR, AUTHOR_NAME, BOOK
from api.catalog.problems import InvalidValue, Problem, ProblemCode
from api.catalog.rows import AnyRow
from api.catalog.text import plain_texts

MAX_SEED_AUTHORS = 1000
MAX_SEED_BOOKS = 10_000
TOO_MANY_AUTHORS = f"at most {MAX_SEED_AUTHORS} authors per call"
TOO_MANY_BOOKS = f"at most {MAX_SEED_BOOKS} books per call"

# Serialises concurrent idempotent seeds, so two runs cannot both decide an author is new.
SEED_LOCK_KEY = 0x7365_6564  # "seed"


def _books() -> Relation:
    relation = AUTHOR.relation("books")
    if relation is None:
        raise LookupError("Author has no relation `books` to seed")
    return relation


BOOKS = _books()
AUTHOR_OF_BOOK = BOOKS.remote.key
"""The column by which a book refers to its author."""

AUTHOR_FIELDS = tuple(f for f in AUTHOR.fields if f.creatable)
BOOK_FIELDS = tuple(f for f in BOOK.fields if f.creatable and f.key != AUTHOR_OF_BOOK)
POSITION = "seed_position"
"""The ordinality of an unnested row: its place in the seed."""
AUTHOR_NUMBER = "seed_author"
"""Per book, the place (from 1) of its author among the seed's authors."""

ARRAY_TYPES: dict[Kind, ARRAY[Any]] = {
    Kind.TEXT: ARRAY(Text()),
    Kind.INT: ARRAY(Integer()),
    Kind.REFERENCE: ARRAY(Integer()),
}


@dataclass(frozen=True)
class SeedRows:
    """A seed's values by column (column key to one value per row), ready to be unnested."""

    authors: Mapping[str, list[Any]]
    books: Mapping[str, list[Any]]
    """Every author's books, author after author, in the order given."""
    book_authors: list[int]
    """Per book, the index of its author in `authors`."""

    def only(self, kept: Sequence[int]) -> "SeedRows":
        """The rows of the authors at these indexes (ascending), with their books."""
        place = {index: new for new, index in enumerate(kept)}
        books = [i for i, author in enumerate(self.book_authors) if author in place]
        return SeedRows(
            authors={key: [values[i] for i in kept] for key, values in self.authors.items()},
            books={key: [values[i] for i in books] for key, values in self.books.items()},
            book_authors=[place[self.book_authors[i]] for i in books],
        )


def clean_column(
    field: Field,
    values: list[Any],
    path: Callable[[int], tuple[str, ...]],
    problems: list[tuple[tuple[int, ...], Problem]],
    order: Callable[[int], tuple[int, ...]],
) -> list[Any]:
    """`field.clean` of every value, the usual values checked together in C.

    A column of plain text (`plain_texts`), of nulls for an optional field, or of integers
    whose least and greatest `field.clean` keeps (its rule is a range) is what `field.clean`
    would make of it value by value; any other column goes value by value.
    Problems are recorded with `order(index)`, so they can be listed as the input has them.
    """
    if field.kind is Kind.TEXT:
        fast = plain_texts(values, max_length=field.text_limit)
        if fast is not None:
            return fast
    if not field.required and all(value is None for value in values):
        return values
    if field.kind is Kind.INT and _within_range(field, values):
        return values
    cleaned = []
    nameless = (field.name,)  # the path a valid value never needs
    for index, value in enumerate(values):
        try:
            cleaned.append(field.clean(value, nameless))
        except InvalidValue:
            try:  # again, for the problem as it reads at its place in the input
                field.clean(value, path(index))
            except InvalidValue as invalid:
                problems.append((order(index), invalid.problem))
            cleaned.append(None)
    return cleaned


def _within_range(field: Field, values: list[Any]) -> bool:
    """Whether every value is an int `field.clean` keeps: a range, so its ends decide."""
    given = [value for value in values if value is not None]
    if not given or not all(type(value) is int for value in given):
        return False
    if len(given) < len(values) and field.required:
        return False
    try:
        field.clean(min(given), (field.name,))
        field.clean(max(given), (field.name,))
    except InvalidValue:
        return False
    return True


def seed_rows(authors: Sequence[Mapping[str, Any]], problems: list[Problem]) -> SeedRows:
    """The validated columns of a seed, or problems (with every problem of every entry).

    `authors` holds each author as GraphQL gives it: field names to values, and a list of
    books, each a mapping of field names to values. Problems come in the input's order: an
    author's fields, then each of their books' fields, author after author.
    """
    books_given = [author[BOOKS.name] for author in authors]
    if len(authors) > MAX_SEED_AUTHORS:
        problems.append(Problem(("authors",), TOO_MANY_AUTHORS, ProblemCode.TOO_MANY))
    if sum(map(len, books_given)) > MAX_SEED_BOOKS:
        problems.append(Problem(("authors",), TOO_MANY_BOOKS, ProblemCode.TOO_MANY))
    if problems:
        return SeedRows({}, {}, [])
    books = [book for given in books_given for book in given]
    book_authors = [author for author, given in enumerate(books_given) for _ in given]
    book_places = [place for given in books_given for place in range(len(given))]
    found: list[tuple[tuple[int, ...], Problem]] = []
    author_columns = {}
    for position, field in enumerate(AUTHOR_FIELDS):

        def author_path(index: int, name: str = field.name) -> tuple[str, ...]:
            return ("authors", str(index), name)

        def author_order(index: int, position: int = position) -> tuple[int, ...]:
            return (index, 0, position)

        values = [author.get(field.name) for author in authors]
        author_columns[field.key] = clean_column(field, values, author_path, found, author_order)
    book_columns = {}
    for position, field in enumerate(BOOK_FIELDS):

        def book_path(index: int, name: str = field.name) -> tuple[str, ...]:
            author, place = str(book_authors[index]), str(book_places[index])
            return ("authors", author, BOOKS.name, place, name)

        def book_order(index: int, position: int = position) -> tuple[int, ...]:
            return (book_authors[index], 1 + book_places[index], position)

        values = [book.get(field.name) for book in books]
        book_columns[field.key] = clean_column(field, values, book_path, found, book_order)
    problems.extend(problem for _, problem in sorted(found, key=lambda item: item[0]))
    return SeedRows(author_columns, book_columns, book_authors)


def arrays(entity: Entity, columns: Mapping[str, list[Any]]) -> dict[str, ColumnElement[Any]]:
    """Each column's values as one array parameter, typed from the description."""
    kinds = {AUTHOR_NUMBER: Kind.INT, **{f.key: f.kind for f in entity.fields}}
    return {
        key: bindparam(f"{entity.plural}_{key}", values, type_=ARRAY_TYPES[kinds[key]])
        for key, values in columns.items()
    }


def unnested(columns: Mapping[str, ColumnElement[Any]]) -> TableValuedAlias:
    """Arrays as rows (a column per key), numbered from 1 in `POSITION`."""
    return (
        func.unnest(*columns.values())
        .table_valued(*columns, with_ordinality=POSITION)
        .render_derived()
    )


def written(
    authors: Mapping[str, ColumnElement[Any]], books: Mapping[str, ColumnElement[Any]]
) -> tuple[CTE, CTE]:
    """The inserts of a seed, authors then books, each in the order given, as two CTEs.

    `authors` and `books` are arrays by column key; `books` also has, in `AUTHOR_NUMBER`, the
    place of each book's author among `authors` (from 1). The authors' CTE returns their rows;
    each book takes the id of its author from it, so one statement writes both tables.
    Postgres runs both inserts whether or not the statement reads them.
    """
    author_rows = unnested(authors)
    new_authors = (
        insert(AUTHOR.table)
        .from_select(
            list(authors),
            select(*(author_rows.c[key] for key in authors)).order_by(author_rows.c[POSITION]),
        )
        .returning(*AUTHOR.table.c)
        .cte("new_authors")
    )
    number = func.row_number().over(order_by=new_authors.c.id).label("number")
    author_ids = select(new_authors.c.id, number).subquery()
    book_rows = unnested(books)
    book_keys = [key for key in books if key != AUTHOR_NUMBER]
    new_books = (
        insert(BOOK.table)
        .from_select(
            [AUTHOR_OF_BOOK, *book_keys],
            select(author_ids.c.id, *(book_rows.c[key] for key in book_keys))
            .join_from(book_rows, author_ids, author_ids.c.number == book_rows.c[AUTHOR_NUMBER])
            .order_by(book_rows.c[POSITION]),
        )
        .cte("new_books")
    )
    return new_authors, new_books


def book_columns(rows: SeedRows) -> dict[str, list[Any]]:
    """The books' columns and, in `AUTHOR_NUMBER`, their author's place (from 1)."""
    return {AUTHOR_NUMBER: [index + 1 for index in rows.book_authors], **rows.books}


async def seed_catalog(
    session: AsyncSession, *, rows: SeedRows, skip_existing: bool
) -> list[AnyRow]:
    """Insert authors and their books in one statement; the new authors' rows, in the order
    given.

    With `skip_existing`, an author whose exact name is already in the catalogue is left
    alone (with the books given for them), which makes re-running a seed script harmless.
    """
    names = rows.authors[AUTHOR_NAME.key]
    if skip_existing:
        await session.execute(select(func.pg_advisory_xact_lock(SEED_LOCK_KEY)))
        given = bindparam("names", sorted(set(names)), type_=ARRAY(Text()))
        existing = set(
            await session.scalars(
                select(AUTHOR_NAME.column).where(AUTHOR_NAME.column == func.any(given))
            )
        )
        rows = rows.only([i for i, name in enumerate(names) if name not in existing])
        names = rows.authors[AUTHOR_NAME.key]
    if not names:
        return []
    new_authors, new_books = written(arrays(AUTHOR, rows.authors), arrays(BOOK, book_columns(rows)))
    columns = [new_authors.c[c.expression.name].label(c.key) for c in AUTHOR.columns]
    statement = select(*columns).add_cte(new_books).order_by(new_authors.c.id)
    try:
        return list((await session.execute(statement)).all())
    except IntegrityError as error:  # a reference that points nowhere, a value taken
        for entity in (BOOK, AUTHOR):
            refused = records.refused(entity, error)
            if refused is not error:
                raise refused from None
        raise
