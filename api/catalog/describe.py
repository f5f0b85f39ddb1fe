"""The vocabulary for describing an entity once: its fields, filters, orderings and relations.

`api/catalog/entities.py` uses it to describe authors and books. Everything else is derived
from those descriptions: the GraphQL types and inputs, the catalogue's reads and writes, the
cursors, and the query planner's SQL. A new column is one `Field` there (and the model and its
migration), not an edit in each of those places.
"""

from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, and_, cast, func, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from api.catalog.filters import ilike_pattern, like_fragment, searchable_characters
from api.catalog.ids import decode_id
from api.catalog.keys import (
    INT4_MAX,
    INT_KEY,
    TEXT_KEY,
    TIMESTAMP_KEY,
    InvalidCursor,
    KeyCodec,
    decode_cursor,
    encode_cursor,
)
from api.catalog.problems import InvalidValue, Problem, ProblemCode
from api.catalog.text import clean_text, filter_text_problem
from api.catalog.words import lower_camel, snake_case, words


class Kind(Enum):
    TEXT = "text"
    INT = "int"
    TIMESTAMP = "timestamp"
    REFERENCE = "reference"  # the key of another entity, given as its global id


KEY_CODECS = {Kind.TEXT: TEXT_KEY, Kind.INT: INT_KEY, Kind.TIMESTAMP: TIMESTAMP_KEY}


class InvalidPageRequest(ValueError):
    """Pagination arguments that cannot be served, with the reason for the client."""


@dataclass(frozen=True)
class Field:
    """One column as clients see it.

    `required` means NOT NULL and required on create. Text follows the rules in
    `api.catalog.text` (trimmed, no control or invisible characters, at most `max_length`);
    integers must lie in `[minimum, maximum]`. `readable` fields appear on the object type;
    `creatable` and `updatable` ones in the create and update inputs. `unique_ignoring_case`
    text is unique whatever its case: the model backs it with a unique index on
    `lower(column)` named `unique_index`, and a value taken already is a userError on the field.
    """

    name: str
    column: InstrumentedAttribute[Any]
    kind: Kind
    description: str
    required: bool = False
    max_length: int | None = None
    multiline: bool = False
    minimum: int | None = None
    maximum: int | None = None
    readable: bool = True
    creatable: bool = True
    updatable: bool = True
    references: str | None = None  # REFERENCE: the entity whose global id is given
    unique_ignoring_case: bool = False

    @property
    def unique_index(self) -> str | None:
        """The unique index on `lower(column)` that enforces `unique_ignoring_case`."""
        if not self.unique_ignoring_case:
            return None
        return f"uq_{self.column.class_.__tablename__}_lower_{self.column.expression.name}"

    @cached_property
    def defaulted(self) -> bool:
        """Whether the column has a default: leaving the field out of a create is then not the
        same as giving it null."""
        column = self.column.expression
        return getattr(column, "default", None) is not None or bool(
            getattr(column, "server_default", None)
        )

    @cached_property  # read for every value written: looked up on the column type once
    def text_limit(self) -> int:
        """`max_length`, or the length of the column's type (`String(100)`)."""
        limit = self.max_length or getattr(self.column.type, "length", None)
        if not isinstance(limit, int):
            raise TypeError(f"text field {self.name} needs a max_length")
        return limit

    @property
    def key(self) -> str:
        """The column's attribute name, which is also its name in rows and insert values."""
        return self.column.key

    def clean(self, value: Any, path: tuple[str, ...]) -> Any:
        """The value to store, or `InvalidValue`; None stays None for an optional field."""
        if value is None:
            if self.required:
                raise InvalidValue(Problem(path, f"{path[-1]} must not be null", ProblemCode.BLANK))
            return None
        if self.kind is Kind.TEXT:
            return clean_text(
                value,
                field=path,
                max_length=self.text_limit,
                required=self.required,
                multiline=self.multiline,
            )
        if self.kind is Kind.INT:
            low = self.minimum if self.minimum is not None else -INT4_MAX - 1
            high = self.maximum if self.maximum is not None else INT4_MAX
            if not low <= value <= high:
                raise InvalidValue(
                    Problem(
                        path,
                        f"{path[-1]} must be between {low} and {high}",
                        ProblemCode.OUT_OF_RANGE,
                    )
                )
            return value
        if self.kind is Kind.REFERENCE:
            assert self.references is not None
            return decode_id(value, type_name=self.references, field=path)
        raise TypeError(f"{self.name} cannot be written")


def created_at(column: InstrumentedAttribute[Any], what: str) -> Field:
    """The time a row was added: set by the database, read-only."""
    return Field(
        "createdAt",
        column,
        Kind.TIMESTAMP,
        f"When the {what} was added.",
        required=True,
        creatable=False,
        updatable=False,
    )


CONTAINS_MIN_LENGTH = 3
"""Letters or digits a contains pattern needs: one trigram, so the trigram index serves it."""


def contains(field: Field, *, min_length: int = CONTAINS_MIN_LENGTH) -> "Filter":
    """`<field>Contains`: a case-insensitive substring of a text field, of at least
    `min_length` letters or digits (see `searchable_characters`)."""
    return Filter(f"{field.name}Contains", field, Op.CONTAINS, min_length=min_length)


class Op(Enum):
    """How a filter compares its value with its field."""

    EQUALS = "equals"
    EQUALS_IGNORING_CASE = "equals ignoring case"
    CONTAINS = "contains"  # a substring, ignoring case
    AT_LEAST = "at least"
    AT_MOST = "at most"


BAD_FILTER = "BAD_USER_INPUT"
PATTERN_TOO_SHORT = "PATTERN_TOO_SHORT"


class InvalidFilter(ValueError):
    """A filter value that cannot be compared, or not cheaply; the message is for the client,
    `code` its error code (BAD_FILTER, or PATTERN_TOO_SHORT for a pattern too short)."""

    def __init__(self, message: str, code: str = BAD_FILTER) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Filter:
    """A condition on one field. `min_length` (text only) is the fewest letters or digits a
    value may have; shorter values are refused before any SQL is built, on every path."""

    name: str
    field: Field
    op: Op
    description: str = ""  # by default, what the operator says about the field
    min_length: int | None = None
    # A range filter on an order key that sorts nulls as a value: that key's expression, set
    # by the entity (see `order_key_bound`).
    order_key: "OrderKey | None" = None

    def __post_init__(self) -> None:
        if not self.description:
            at_least = f" At least {self.min_length} letters or digits." if self.min_length else ""
            defaults = {
                Op.EQUALS: self.field.description,
                Op.EQUALS_IGNORING_CASE: "Exact, ignoring case.",
                Op.CONTAINS: f"Substring of the {self.field.name}, ignoring case.{at_least}",
                Op.AT_LEAST: f"At least this {self.field.name}.",
                Op.AT_MOST: f"At most this {self.field.name}.",
            }
            object.__setattr__(self, "description", defaults[self.op])

    def value(self, given: Any) -> Any:
        """The value as compared in SQL, or `InvalidFilter`."""
        if self.field.kind is Kind.REFERENCE:
            assert self.field.references is not None
            try:
                return decode_id(given, type_name=self.field.references, field=(self.name,))
            except InvalidValue as invalid:
                raise InvalidFilter(invalid.problem.message) from None
        if isinstance(given, str):
            problem = filter_text_problem(given, self.name)
            if problem is not None:
                raise InvalidFilter(problem)
            if self.min_length and searchable_characters(given) < self.min_length:
                raise InvalidFilter(
                    f"`{self.name}` needs at least {self.min_length} letters or digits: a "
                    "shorter pattern cannot use the search index",
                    PATTERN_TOO_SHORT,
                )
            if self.op is Op.EQUALS_IGNORING_CASE:
                return given.strip().lower()
            if self.op is Op.CONTAINS:
                return ilike_pattern(given)
        return given

    def matches(self, value: Any, stored: Any) -> bool:
        """`clause` in Python, for a row's `stored` value as the change log keeps it (JSON):
        live subscriptions filter each change with the same meaning as the list's SQL."""
        if stored is None:
            return False  # SQL's NULL compares as unknown: the row is not in the list
        if self.op is Op.EQUALS:
            return bool(stored == value)
        if self.op is Op.EQUALS_IGNORING_CASE:
            return bool(str(stored).lower() == value)
        if self.op is Op.CONTAINS:
            return like_fragment(value).lower() in str(stored).lower()
        if self.op is Op.AT_LEAST:
            return bool(stored >= value)
        return bool(stored <= value)

    def clause(self, value: Any) -> ColumnElement[bool]:
        """The condition for a value from `value()`, or a bind parameter standing for one."""
        column: ColumnElement[Any] = self.field.column.__clause_element__()
        condition: ColumnElement[bool]
        if self.op is Op.EQUALS:
            condition = column == value
        elif self.op is Op.EQUALS_IGNORING_CASE:
            condition = func.lower(column) == value
        elif self.op is Op.CONTAINS:  # `value` is an ILIKE pattern from `value()`
            condition = rare_match(column, value)
        elif self.op is Op.AT_LEAST:
            condition = and_(column >= value, *self.order_key_bound(value))
        else:
            condition = and_(column <= value, *self.order_key_bound(value))
        return condition

    def order_key_bound(self, value: Any) -> list[ColumnElement[bool]]:
        """The same bound on the order key's expression, when this field is one that sorts its
        nulls as a value (`coalesce(published_year, 2147483647)`): implied, so no answer
        changes (a row within the bound has a value, which is its key).

        Postgres plans a filter on the column apart from a sort on the expression. Ordered by
        that key, the page then walked the key's whole index, filtering row by row, when few
        rows lay beyond the bound; with the bound on the key it starts where they begin. In
        any other order, the two bounds' estimates multiply, so a bound few rows pass is
        served by the column's index and its rows sorted, rather than by a walk of another
        index that hopes to meet them early (and walks the table when they sit at its end).
        """
        if self.order_key is None:
            return []
        key = self.order_key.expression()
        return [key >= value if self.op is Op.AT_LEAST else key <= value]


# Lengths of a text, none of them 0 when it matches a pattern; Postgres keeps no statistics
# on them and counts each `> 0` a third. See `rare_match`.
LENGTHS = (func.char_length, func.octet_length, func.bit_length)


def rare_match(column: ColumnElement[Any], pattern: Any) -> ColumnElement[bool]:
    """A substring match, with conditions it implies that let Postgres believe it rare.

    Postgres cannot count a substring. One its sample of the column does not show, it takes
    for one row in 10,000 (1,000 of 10M books): ordered by another index, it then expects a
    page within a short walk of that index and takes the walk, filtering row by row; when the
    pattern matches nothing, the walk reads the whole table (3.3 s at 10M books) instead of
    one look-up in the trigram index. A matching text is never empty, so its three lengths
    being above 0 changes no answer; Postgres counts each a third, 1/27 in all. That sends a
    pattern the sample does not show to the trigram index (its rows then sorted) for pages
    of any size, while one the sample shows (one row in a hundred or more) still walks the
    ordering's index, which soon fills its page. (One condition, a third, was not enough for
    pages of one to five rows; stating the match twice squared the guess, and then a pattern
    in 4% of the rows read all of them.) `tests/test_scale.py` checks the rows plans read;
    `make bench-scale` measures them at 10M books.
    """
    return and_(column.ilike(pattern, escape="\\"), *(length(column) > 0 for length in LENGTHS))


@dataclass(frozen=True)
class OrderKey:
    """A sort key: the field, then the id to break ties.

    A nullable key sorts its nulls as `nulls_as` (after every value, ascending), so keys and
    cursors never hold NULL, and an index on `(coalesce(key, nulls_as), id)` serves it.
    """

    name: str
    field: Field
    nulls_as: Any = None

    @cached_property
    def codec(self) -> KeyCodec:
        return KEY_CODECS[self.field.kind]

    def expression(self) -> ColumnElement[Any]:
        column: ColumnElement[Any] = self.field.column.__clause_element__()
        if self.nulls_as is None:
            return column
        return func.coalesce(column, cast(self.nulls_as, Integer))


@dataclass(frozen=True, eq=False)
class Ordering:
    """One direction of a sort key; compared by identity (its columns build SQL on `==`)."""

    name: str
    key: OrderKey
    id: InstrumentedAttribute[int]
    descending: bool

    @cached_property
    def codec(self) -> KeyCodec:
        return self.key.codec

    @property
    def by_id(self) -> bool:
        return self.key.field.column is self.id

    def id_column(self) -> ColumnElement[int]:
        column: ColumnElement[int] = self.id.__clause_element__()
        return column

    def sort_key(self) -> ColumnElement[Any]:
        return self.key.expression()

    def order_by(self, *, reverse: bool = False) -> list[ColumnElement[Any]]:
        descending = self.descending != reverse
        columns = [self.id] if self.by_id else [self.sort_key(), self.id]
        return [c.desc() if descending else c.asc() for c in columns]

    def beyond(self, key: Any, row_id: Any, *, forward: bool) -> ColumnElement[bool]:
        """Rows strictly past (key, id) in the direction of travel (`forward` = sort order).

        A row comparison, so Postgres reads it as an index range on `(key, id)`. `key` and
        `row_id` are values or bind parameters standing for them.
        """
        ascending = self.descending != forward
        condition: ColumnElement[bool]
        if self.by_id:
            row = self.id_column()
            condition = row > row_id if ascending else row < row_id
        else:
            mine, theirs = tuple_(self.sort_key(), self.id), tuple_(key, row_id)
            condition = mine > theirs if ascending else mine < theirs
        return condition

    def not_beyond(self, key: Any, row_id: Any, *, forward: bool) -> ColumnElement[bool]:
        """The complement of `beyond`, also as an index range."""
        ascending = self.descending != forward
        condition: ColumnElement[bool]
        if self.by_id:
            row = self.id_column()
            condition = row <= row_id if ascending else row >= row_id
        else:
            mine, theirs = tuple_(self.sort_key(), self.id), tuple_(key, row_id)
            condition = mine <= theirs if ascending else mine >= theirs
        return condition

    def cursor_for(self, key: Any, row_id: int) -> str:
        return encode_cursor(self.name, row_id, self.codec.encode(key))

    def cursor_sql(self, key: ColumnElement[Any], row_id: ColumnElement[int]) -> ColumnElement[str]:
        """The cursor `cursor_for` gives, built by Postgres from a row's key and id."""
        text = literal(f"{self.name}:") + cast(row_id, Text) + ":" + self.codec.sql(key)
        base64 = func.encode(func.convert_to(text, "UTF8"), "base64")
        return func.translate(base64, "+/=\n", "-_")

    def parse_cursor(self, cursor: str, *, argument: str) -> tuple[Any, int]:
        """(key, id) of a cursor this ordering issued; `InvalidPageRequest` for anything else."""
        try:
            name, row_id, key_text = decode_cursor(cursor)
            key = self.codec.decode(key_text)
        except (InvalidCursor, ValueError, OverflowError):
            raise InvalidPageRequest(f"`{argument}` is not a valid cursor") from None
        if name != self.name:
            raise InvalidPageRequest(
                f"`{argument}` is a cursor for orderBy {name}, not {self.name}; "
                "use the cursors of the same ordering"
            )
        return key, row_id


Key = InstrumentedAttribute[Any]
"""A relation's key column: an id, or a foreign key (`int | None` for an optional relation)."""


class Cardinality(Enum):
    ONE = "one"
    MANY = "many"


@dataclass(frozen=True)
class Relation:
    """An edge to another entity: `local` on this side equals `remote` on the other.

    A to-many relation either `owns` its rows (an author's books: deleting the author may
    delete them too, with `cascade_argument`) or only refers to them (a publisher's books
    belong to their authors: never deleted with the publisher). Either way, a row that still
    has rows in a to-many relation is not deleted on its own: that is `has_rows_code`.
    A to-one relation is `optional` when its key may be null (a book without a publisher).
    """

    name: str
    target: str
    cardinality: Cardinality
    local: "Key"
    remote: "Key"
    description: str
    owns: bool = False
    optional: bool = False

    @property
    def cascade_argument(self) -> str:
        """The delete mutation's flag that deletes this relation's rows too (`withBooks`)."""
        return "with" + self.name[:1].upper() + self.name[1:]

    @property
    def has_rows_code(self) -> str:
        """The userError code for a delete refused while this relation holds rows."""
        return f"HAS_{snake_case(self.name).upper()}"


@dataclass(frozen=True)
class Entity:
    name: str
    plural: str  # the root connection's field name
    model: type[Any]
    description: str
    fields: tuple[Field, ...]
    filters: tuple[Filter, ...]
    order_keys: tuple[OrderKey, ...]  # besides the id, which every entity is ordered by
    relations: tuple[Relation, ...] = ()
    default_order: str = "ID_ASC"
    orderings: dict[str, Ordering] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id = OrderKey("ID", Field("id", self.id_column, Kind.INT, "", readable=False))
        built = {
            f"{key.name}_{direction}": Ordering(
                f"{key.name}_{direction}", key, self.id_column, direction == "DESC"
            )
            for key in (by_id, *self.order_keys)
            for direction in ("ASC", "DESC")
        }
        object.__setattr__(self, "orderings", built)
        object.__setattr__(self, "filters", tuple(self._with_order_keys(self.filters)))

    def _with_order_keys(self, filters: tuple[Filter, ...]) -> list[Filter]:
        """Range filters on a key that sorts its nulls as a value learn that key."""
        keys = {key.field.name: key for key in self.order_keys if key.nulls_as is not None}
        return [
            replace(f, order_key=keys.get(f.field.name))
            if f.op in (Op.AT_LEAST, Op.AT_MOST) and f.order_key is None
            else f
            for f in filters
        ]

    @property
    def table(self) -> Any:
        return self.model.__table__

    @property
    def field_name(self) -> str:
        """The root lookup's and the payloads' field: `bookSeries` for `BookSeries`."""
        return lower_camel(self.name)

    @property
    def python_name(self) -> str:
        """`field_name` as Strawberry wants it written in Python: `book_series`."""
        return snake_case(self.name)

    @property
    def label(self) -> str:
        """The entity in a sentence: `book series`."""
        return words(self.name)

    @property
    def connection_type(self) -> str:
        return f"{self.name}Connection"

    @property
    def edge_type(self) -> str:
        return f"{self.name}Edge"

    def payload_type(self, verb: str) -> str:
        """`CreateBookPayload` for ("Create", Book)."""
        return f"{verb}{self.name}Payload"

    @property
    def to_many(self) -> tuple[Relation, ...]:
        """The to-many relations: each keeps a row from being deleted while it has rows."""
        return tuple(r for r in self.relations if r.cardinality is Cardinality.MANY)

    @property
    def owned(self) -> tuple[Relation, ...]:
        """The to-many relations whose rows a delete may take along (`withBooks`)."""
        return tuple(r for r in self.to_many if r.owns)

    @property
    def id_column(self) -> Any:
        """The model's `id` attribute (an `InstrumentedAttribute[int]`)."""
        return self.model.id

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def filter(self, name: str) -> Filter | None:
        return next((f for f in self.filters if f.name == name), None)

    def relation(self, name: str) -> Relation | None:
        return next((r for r in self.relations if r.name == name), None)

    def ordering(self, name: str | None) -> Ordering:
        """The ordering named by an enum value; None (an explicit null) is the default."""
        return self.orderings[name or self.default_order]

    @property
    def columns(self) -> tuple[InstrumentedAttribute[Any], ...]:
        """What a row of this entity holds: the id and every field's column."""
        return (self.id_column, *(f.column for f in self.fields))

    @property
    def filters_by_name(self) -> dict[str, Filter]:
        return {f.name: f for f in self.filters}
