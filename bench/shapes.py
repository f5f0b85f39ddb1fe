"""Every query shape the schema offers, with values that make each one selective.

Built from schema.graphql, so a new ordering, filter or nested connection is measured (by
`make bench-scale`) and checked (by tests/test_scale.py) without being listed here: both
directions of each ordering from the start, from the end (`last:`) and from a cursor in the
middle of the table; each filter with a rare value and with a value no row holds, each in
every ordering (a page with its count) and on its own as a count; each contains filter with a
two-letter pattern in every ordering, which must be refused before any SQL; each unfiltered
totalCount; each connection nested in a page.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphql
from sqlalchemy import func, select

from api.catalog.describe import PATTERN_TOO_SHORT, Filter, Kind, Op, Ordering
from api.catalog.entities import ENTITIES
from api.catalog.keys import INT4_MAX
from api.db.engine import create_engine
from api.db.migrations import PROJECT_ROOT
from api.db.urls import parse_database_url
from bench.scale_data import RARE_NAME_WORD, RARE_TITLE_WORD, rare_country
from bench.workloads import global_id

PAGE = 20
SCHEMA = graphql.build_schema((PROJECT_ROOT / "schema.graphql").read_text())
# Each connection type's orderings, by enum value: where deep cursors come from.
ORDERINGS: dict[str, dict[str, Ordering]] = {
    f"{name}Connection": entity.orderings for name, entity in ENTITIES.items()
}
PAGE_SELECTION = (
    "edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
)
DeepCursors = dict[tuple[str, str], str]


# The few values bench.scale_data plants rarely, by (table, column); any other text filter is
# given a value no row holds, which is as selective.
PLANTED = {
    ("authors", "name"): RARE_NAME_WORD,
    ("books", "title"): RARE_TITLE_WORD,
    ("authors", "country"): rare_country(),
}
NOWHERE = "nowhere-in-the-catalogue"
NO_SUCH_ID = 2_000_000_000  # an int4 id no catalogue reaches
TWO_LETTERS = "ab"


def rare_value(described: Filter, authors: int) -> object:
    """A value few rows (if any) match, read from the filter's description."""
    field = described.field
    if field.kind is Kind.REFERENCE:
        return global_id(field.references or "", max(1, authors // 2))
    if field.kind is Kind.INT:  # the ends of the allowed range: few rows, if any, lie there
        return field.maximum if described.op is Op.AT_LEAST else field.minimum
    column = (field.column.class_.__tablename__, str(field.column.expression.name))
    return PLANTED.get(column, NOWHERE)


def empty_value(described: Filter) -> object:
    """A value no row matches, read from the filter's description: an id past every row, a
    year beyond the allowed range, or text nobody wrote."""
    field = described.field
    if field.kind is Kind.REFERENCE:
        return global_id(field.references or "", NO_SUCH_ID)
    if field.kind is Kind.INT:
        if described.op is Op.AT_LEAST:
            return INT4_MAX if field.maximum is None else field.maximum + 1
        return -INT4_MAX - 1 if field.minimum is None else field.minimum - 1
    return NOWHERE


def rare_values(authors: int) -> dict[str, object]:
    """A rare value for every filter the descriptions give, by filter name."""
    values: dict[str, object] = {}
    for entity in ENTITIES.values():
        for described in entity.filters:
            values.setdefault(described.name, rare_value(described, authors))
    return values


def empty_values() -> dict[str, object]:
    """A value matching nothing for every filter the descriptions give, by filter name."""
    values: dict[str, object] = {}
    for entity in ENTITIES.values():
        for described in entity.filters:
            values.setdefault(described.name, empty_value(described))
    return values


def short_patterns() -> dict[str, str]:
    """Each contains filter's two-letter pattern: one letter fewer than its minimum, by name."""
    return {
        described.name: TWO_LETTERS
        for entity in ENTITIES.values()
        for described in entity.filters
        if described.op is Op.CONTAINS
    }


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    # (connection type, ordering) whose deep cursor goes into the `cursor` variable.
    deep_cursor: tuple[str, str] | None = None
    # The error code the shape must be answered with, before any SQL; None: answered with data.
    refused: str | None = None

    @property
    def counts_only(self) -> bool:
        return self.name.endswith("totalCount")

    def variables_for(self, cursors: DeepCursors) -> dict[str, Any]:
        if self.deep_cursor is None:
            return self.variables
        return {**self.variables, "cursor": cursors[self.deep_cursor]}


async def deep_cursors(url: str) -> DeepCursors:
    """A cursor in the middle of every ordering: (connection type, enum value) -> cursor."""
    engine = create_engine(parse_database_url(url))
    cursors = {}
    try:
        async with engine.connect() as connection:
            for type_name, orderings in ORDERINGS.items():
                for name, ordering in orderings.items():
                    rows = await connection.scalar(select(func.count(ordering.id)))
                    middle = select(ordering.sort_key(), ordering.id).order_by(*ordering.order_by())
                    found = await connection.execute(middle.offset((rows or 0) // 2).limit(1))
                    key, row_id = found.first() or _nowhere(ordering)
                    cursors[type_name, name] = ordering.cursor_for(key, row_id)
    finally:
        await engine.dispose()
    return cursors


def _nowhere(ordering: Ordering) -> tuple[object, int]:
    """A valid (key, id) for an empty table (publishers, in a catalogue loaded without any)."""
    if ordering.by_id:
        return 1, 1
    keys = {Kind.TEXT: "m", Kind.INT: 0, Kind.TIMESTAMP: datetime(2000, 1, 1, tzinfo=UTC)}
    return keys[ordering.key.field.kind], 1


def _object(type_: graphql.GraphQLType) -> graphql.GraphQLObjectType:
    named = graphql.get_named_type(type_)
    assert isinstance(named, graphql.GraphQLObjectType), named
    return named


def _argument_type(field: graphql.GraphQLField, argument: str) -> graphql.GraphQLNamedType:
    return graphql.get_named_type(field.args[argument].type)


def _connections(parent: graphql.GraphQLObjectType) -> dict[str, graphql.GraphQLField]:
    """Fields of `parent` that are connections (of a type with orderings)."""
    return {
        name: field
        for name, field in parent.fields.items()
        if graphql.get_named_type(field.type).name in ORDERINGS
    }


def _orderings(field: graphql.GraphQLField) -> list[str]:
    enum = _argument_type(field, "orderBy")
    assert isinstance(enum, graphql.GraphQLEnumType), enum
    return list(enum.values)


def _node_type(connection: graphql.GraphQLField) -> graphql.GraphQLObjectType:
    edge = _object(_object(connection.type).fields["edges"].type)
    return _object(edge.fields["node"].type)


def _ordering_shapes(name: str, connection: graphql.GraphQLField) -> list[Shape]:
    """Both directions of every ordering: first, last, and from a cursor deep in the middle."""
    found = []
    for order in _orderings(connection):
        windows = [
            ("first", f"first: {PAGE}", False),
            ("last", f"last: {PAGE}", False),
            ("deep after", f"first: {PAGE}, after: $cursor", True),
            ("deep before", f"last: {PAGE}, before: $cursor", True),
        ]
        for window, arguments, deep in windows:
            declared = "($cursor: String)" if deep else ""
            found.append(
                Shape(
                    f"{name} {order} {window}",
                    f"query{declared} {{ {name}({arguments}, orderBy: {order}) "
                    f"{{ {PAGE_SELECTION} }} }}",
                    deep_cursor=(_object(connection.type).name, order) if deep else None,
                )
            )
    return found


def _filter_shapes(
    name: str, connection: graphql.GraphQLField, values: "FilterValues"
) -> list[Shape]:
    """Each filter with a rare value and with one no row holds: its first page with the count
    (default ordering), the count alone, and its first page alone in every ordering. Contains
    filters also get a two-letter pattern in every ordering, which must be refused."""
    inputs = _argument_type(connection, "filter")
    assert isinstance(inputs, graphql.GraphQLInputObjectType), inputs
    for kind, given in (("rare", values.rare), ("empty", values.empty)):
        missing = set(inputs.fields) - set(given)
        assert not missing, f"add a {kind} value (bench/shapes.py) for the filters {missing}"
    declared = f"query($filter: {inputs.name})"
    orders = _orderings(connection)
    found = []
    for filter_name in inputs.fields:
        for kind, given in (("rare", values.rare), ("empty", values.empty)):
            variables = {"filter": {filter_name: given[filter_name]}}
            label = f"{name} filter {filter_name}" + ("" if kind == "rare" else f" {kind}")
            found.append(_filtered_page(label, name, declared, variables))
            found.append(
                Shape(
                    f"{label} totalCount",
                    f"{declared} {{ {name}(filter: $filter) {{ totalCount }} }}",
                    variables,
                )
            )
            found += [
                _filtered_page(
                    f"{name} filter {filter_name} {kind} {order}",
                    name,
                    declared,
                    variables,
                    order,
                    counted=False,
                )
                for order in orders
            ]
        if filter_name in values.short:
            variables = {"filter": {filter_name: values.short[filter_name]}}
            found += [
                _filtered_page(
                    f"{name} filter {filter_name} two letters {order}",
                    name,
                    declared,
                    variables,
                    order,
                    refused=PATTERN_TOO_SHORT,
                )
                for order in orders
            ]
    return found


def _filtered_page(
    label: str,
    name: str,
    declared: str,
    variables: dict[str, Any],
    order: str | None = None,
    refused: str | None = None,
    *,
    counted: bool = True,
) -> Shape:
    """The first page; `counted` with totalCount too (a page alone is planned differently:
    nothing else in the statement hides a walk of a whole index)."""
    ordered = f", orderBy: {order}" if order else ""
    count = "totalCount " if counted else ""
    return Shape(
        label,
        f"{declared} {{ {name}(first: {PAGE}, filter: $filter{ordered}) "
        f"{{ {count}{PAGE_SELECTION} }} }}",
        variables,
        refused=refused,
    )


@dataclass(frozen=True)
class FilterValues:
    """The values each filter is measured with, by filter name."""

    rare: dict[str, object]
    empty: dict[str, object]
    short: dict[str, str]

    @classmethod
    def for_catalogue(cls, authors: int) -> "FilterValues":
        return cls(rare_values(authors), empty_values(), short_patterns())


def _nested_shapes(name: str, connection: graphql.GraphQLField) -> list[Shape]:
    """Connections inside each node of a page (an author's books), in every ordering."""
    found = []
    for nested_name, nested in _connections(_node_type(connection)).items():
        for order in _orderings(nested):
            found.append(
                Shape(
                    f"{name}.{nested_name} {order}",
                    f"{{ {name}(first: {PAGE}) {{ edges {{ node {{ {nested_name}(first: 5, "
                    f"orderBy: {order}) {{ totalCount {PAGE_SELECTION} }} }} }} }} }}",
                )
            )
    return found


def shapes(authors: int) -> list[Shape]:
    """Every shape, for a catalogue of `authors` authors (ids 1..authors)."""
    query = SCHEMA.query_type
    assert query is not None
    found = []
    for name, connection in _connections(query).items():
        found += _ordering_shapes(name, connection)
        found.append(Shape(f"{name} totalCount", f"{{ {name} {{ totalCount }} }}"))
        found += _filter_shapes(name, connection, FilterValues.for_catalogue(authors))
        found += _nested_shapes(name, connection)
    return found
