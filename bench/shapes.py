"""Every query shape the schema offers, with values that make each one selective.

Built from schema.graphql, so a new ordering, filter or nested connection is measured (by
`make bench-scale`) and checked (by tests/test_scale.py) without being listed here: both
directions of each ordering from the start, from the end (`last:`) and from a cursor in the
middle of the table; each filter with a rare value, with its page and on its own as a count;
each unfiltered totalCount; each connection nested in a page.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphql
from sqlalchemy import func, select

from api.catalog.describe import Filter, Kind, Op, Ordering
from api.catalog.entities import ENTITIES
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


def rare_value(described: Filter, authors: int) -> object:
    """A value few rows (if any) match, read from the filter's description."""
    field = described.field
    if field.kind is Kind.REFERENCE:
        return global_id(field.references or "", max(1, authors // 2))
    if field.kind is Kind.INT:  # the ends of the allowed range: few rows, if any, lie there
        return field.maximum if described.op is Op.AT_LEAST else field.minimum
    column = (field.column.class_.__tablename__, str(field.column.expression.name))
    return PLANTED.get(column, NOWHERE)


def rare_values(authors: int) -> dict[str, object]:
    """A rare value for every filter the descriptions give, by filter name."""
    values: dict[str, object] = {}
    for entity in ENTITIES.values():
        for described in entity.filters:
            values.setdefault(described.name, rare_value(described, authors))
    return values


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    # (connection type, ordering) whose deep cursor goes into the `cursor` variable.
    deep_cursor: tuple[str, str] | None = None

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
    name: str, connection: graphql.GraphQLField, rare: dict[str, object]
) -> list[Shape]:
    """Each filter with a rare value: its first page with the count, and the count alone."""
    inputs = _argument_type(connection, "filter")
    assert isinstance(inputs, graphql.GraphQLInputObjectType), inputs
    missing = set(inputs.fields) - set(rare)
    assert not missing, f"add a rare value to rare_values() for the filters {missing}"
    found = []
    for filter_name in inputs.fields:
        declared = f"query($filter: {inputs.name})"
        variables = {"filter": {filter_name: rare[filter_name]}}
        found += [
            Shape(
                f"{name} filter {filter_name}",
                f"{declared} {{ {name}(first: {PAGE}, filter: $filter) "
                f"{{ totalCount {PAGE_SELECTION} }} }}",
                variables,
            ),
            Shape(
                f"{name} filter {filter_name} totalCount",
                f"{declared} {{ {name}(filter: $filter) {{ totalCount }} }}",
                variables,
            ),
        ]
    return found


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
        found += _filter_shapes(name, connection, rare_values(authors))
        found += _nested_shapes(name, connection)
    return found
