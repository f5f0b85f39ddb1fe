"""Compile a validated GraphQL query into one SQL statement that returns the `data` JSON.

It covers the catalogue's read-only schema: the `authors` and `books` connections (with
filters, orderings, cursors, totalCount and pageInfo), `author(id:)`, `book(id:)`, nested
`Author.books` and `Book.author`, aliases, fragments and `__typename`. Anything else raises
`NotPlannable`; argument values the ordinary path would reject raise `Rejected`, so that path
answers with its own error.

Only identifiers enter the SQL text: table and column names from this module, and response
keys, which are GraphQL names (`[_A-Za-z][_0-9A-Za-z]*`, checked again here). Every value a
client sends is a bind parameter.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_argument_values

from api.catalog.authors import AUTHOR_ORDERINGS
from api.catalog.books import BOOK_ORDERINGS
from api.catalog.filters import ilike_pattern
from api.catalog.ids import decode_id
from api.catalog.pagination import InvalidPageRequest, Ordering, page_window
from api.catalog.problems import Problem
from api.catalog.text import filter_text_problem

MAX_KEYS = 50  # json_build_object takes at most 100 arguments
GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")


class NotPlannable(Exception):
    """The document uses something the planner does not cover."""


class Rejected(Exception):
    """An argument value the ordinary path answers with an error."""


@dataclass(frozen=True)
class Entity:
    type_name: str
    table: str
    orderings: dict[str, Ordering]
    scalars: dict[str, str]  # GraphQL field -> SQL template over the row alias `{t}`


def _timestamp(column: str) -> str:
    """The text Python's datetime.isoformat() gives for a UTC timestamptz."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"extract(microseconds FROM {column})::int % 1000000 = 0 THEN '' "
        f"ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _global_id(type_name: str) -> str:
    return f"encode(convert_to('{type_name}:' || {{t}}.id, 'UTF8'), 'base64')"


AUTHOR = Entity(
    "Author",
    "authors",
    AUTHOR_ORDERINGS,
    {
        "id": _global_id("Author"),
        "databaseId": "{t}.id",
        "name": "{t}.name",
        "bio": "{t}.bio",
        "country": "{t}.country",
        "createdAt": _timestamp("{t}.created_at"),
    },
)
BOOK = Entity(
    "Book",
    "books",
    BOOK_ORDERINGS,
    {
        "id": _global_id("Book"),
        "databaseId": "{t}.id",
        "title": "{t}.title",
        "createdAt": _timestamp("{t}.created_at"),
    },
)


@dataclass
class Compilation:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues | None
    default_page_size: int
    max_page_size: int
    params: list[Any] = field(default_factory=list)
    aliases: int = 0
    writing: bool = False  # a statement that inserts cannot read its own new row elsewhere

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    def collect(
        self, selections: Iterable[SelectionSetNode], type_name: str
    ) -> dict[str, list[FieldNode]]:
        """Fields by response key, fragments expanded, as GraphQL's CollectFields does."""
        fields: dict[str, list[FieldNode]] = {}
        for selection_set in selections:
            for selection in selection_set.selections:
                if selection.directives:
                    raise NotPlannable("directives")
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments[selection.name.value]
                    condition, nested = fragment.type_condition.name.value, fragment.selection_set
                elif isinstance(selection, InlineFragmentNode):
                    condition = (
                        selection.type_condition.name.value
                        if selection.type_condition
                        else type_name
                    )
                    nested = selection.selection_set
                else:
                    raise NotPlannable(type(selection).__name__)
                if condition in (type_name, "Node"):
                    for key, nodes in self.collect([nested], type_name).items():
                        fields.setdefault(key, []).extend(nodes)
        if len(fields) > MAX_KEYS:
            raise NotPlannable("too many fields for json_build_object")
        return fields

    def arguments(self, type_name: str, node: FieldNode) -> dict[str, Any]:
        parent = self.schema.get_type(type_name)
        assert isinstance(parent, GraphQLObjectType)
        return get_argument_values(parent.fields[node.name.value], node, self.variables)

    def json_object(
        self,
        type_name: str,
        nodes: list[FieldNode],
        value_of: Callable[[str, list[FieldNode]], str],
    ) -> str:
        selections = [n.selection_set for n in nodes if n.selection_set is not None]
        pairs = []
        for key, field_nodes in self.collect(selections, type_name).items():
            name = field_nodes[0].name.value
            value = f"'{type_name}'" if name == "__typename" else value_of(name, field_nodes)
            if not GRAPHQL_NAME.match(key):  # validated already; checked again as it enters SQL
                raise NotPlannable(key)
            pairs.append(f"'{key}', {value}")
        return f"json_build_object({', '.join(pairs)})"


def compile_query(
    operation: OperationDefinitionNode,
    *,
    schema: GraphQLSchema,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues | None,
    default_page_size: int,
    max_page_size: int,
) -> tuple[str, list[Any]]:
    """SQL returning the whole response body as UTF-8 bytes, and its parameters."""
    if operation.operation.value != "query":
        raise NotPlannable("not a query")
    c = Compilation(schema, fragments, variables, default_page_size, max_page_size)

    def root_field(name: str, nodes: list[FieldNode]) -> str:
        if name not in ("authors", "books", "author", "book", "node"):
            raise NotPlannable(name)
        args = c.arguments("Query", nodes[0])
        if name == "node":
            entity, key = _node_key(args["id"])
            t = c.alias()
            node = node_object(c, entity, nodes, t)
            return f"(SELECT {node} FROM {entity.table} {t} WHERE {t}.id = {c.param(key)})"
        if name in ("authors", "books"):
            entity = AUTHOR if name == "authors" else BOOK
            return _connection(c, entity, nodes, args, parent=None)
        if name in ("author", "book"):
            entity = AUTHOR if name == "author" else BOOK
            key = database_key(args["id"], entity.type_name)
            t = c.alias()
            node = node_object(c, entity, nodes, t)
            return f"(SELECT {node} FROM {entity.table} {t} WHERE {t}.id = {c.param(key)})"
        raise NotPlannable(name)

    data = c.json_object("Query", [root_of(operation)], root_field)
    return f"SELECT {response_body(data)}", c.params


def root_of(operation: OperationDefinitionNode) -> FieldNode:
    """The operation as a field, so its selection is built like any object's."""
    return FieldNode(name=NameNode(value="data"), selection_set=operation.selection_set)


def response_body(data: str) -> str:
    """The whole response, `{"data": …}`, as UTF-8 bytes: sent without decoding it again."""
    return f"""convert_to('{{"data":' || ({data})::text || '}}', 'UTF8')"""


def _node_key(value: str) -> tuple[Entity, int]:
    """The entity a global id names, and its key; what the ordinary path refuses is rejected."""
    for entity in (AUTHOR, BOOK):
        decoded = decode_id(value, type_name=entity.type_name, field=("id",))
        if not isinstance(decoded, Problem):
            return entity, decoded
    raise Rejected("not the id of an Author or a Book")


def database_key(value: str, type_name: str) -> int:
    decoded = decode_id(value, type_name=type_name, field=("id",))
    if isinstance(decoded, Problem):
        raise Rejected(decoded.message)
    return decoded


def node_object(c: Compilation, entity: Entity, nodes: list[FieldNode], t: str) -> str:
    def value(name: str, field_nodes: list[FieldNode]) -> str:
        if name in entity.scalars:
            return entity.scalars[name].format(t=t)
        if entity is AUTHOR and name == "books":
            if c.writing:
                raise NotPlannable("a page would not see the row being written")
            args = c.arguments(entity.type_name, field_nodes[0])
            return _connection(c, BOOK, field_nodes, args, parent=f"{{t}}.author_id = {t}.id")
        if entity is BOOK and name == "author":
            a = c.alias()
            author = node_object(c, AUTHOR, field_nodes, a)
            return f"(SELECT {author} FROM authors {a} WHERE {a}.id = {t}.author_id)"
        raise NotPlannable(f"{entity.type_name}.{name}")

    return c.json_object(entity.type_name, nodes, value)


def _filters(c: Compilation, entity: Entity, args: dict[str, Any]) -> list[str]:
    given = args.get("filter") or {}
    for name, value in given.items():
        if isinstance(value, str) and filter_text_problem(value, name) is not None:
            raise Rejected(name)
    clauses = []
    if entity is AUTHOR:
        if given.get("country") is not None:
            clauses.append(f"lower({{t}}.country) = {c.param(given['country'].strip().lower())}")
        if given.get("nameContains"):
            pattern = c.param(ilike_pattern(given["nameContains"]))
            clauses.append(f"{{t}}.name ILIKE {pattern} ESCAPE '\\'")
    else:
        if given.get("authorId") is not None:
            clauses.append(
                f"{{t}}.author_id = {c.param(database_key(given['authorId'], 'Author'))}"
            )
        if given.get("titleContains"):
            pattern = c.param(ilike_pattern(given["titleContains"]))
            clauses.append(f"{{t}}.title ILIKE {pattern} ESCAPE '\\'")
    return clauses


def _connection(
    c: Compilation,
    entity: Entity,
    nodes: list[FieldNode],
    args: dict[str, Any],
    *,
    parent: str | None,
) -> str:
    ordering = entity.orderings[args["orderBy"].value]
    try:
        window = page_window(
            ordering,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            default_size=c.default_page_size,
            max_size=c.max_page_size,
        )
    except InvalidPageRequest as error:
        raise Rejected(str(error)) from None
    scope = _filters(c, entity, args) + ([parent] if parent else [])
    key_column = ordering.key.key
    bounds = []
    if window.after is not None:
        bounds.append(_beyond(c, ordering, window.after, forward=True, key=key_column))
    if window.before is not None:
        bounds.append(_beyond(c, ordering, window.before, forward=False, key=key_column))
    came_from = window.after if window.forward else window.before

    def where(t: str, extra: list[str]) -> str:
        conditions = [s.format(t=t) for s in scope + extra]
        return " AND ".join(conditions) or "true"

    descending = ordering.descending != (not window.forward)
    direction = "DESC" if descending else "ASC"
    p = c.alias()
    travel = f"{p}.{key_column} {direction}, {p}.id {direction}"
    size = window.size
    page = (
        f"SELECT {p}.*, row_number() OVER (ORDER BY {travel}) AS rn FROM {entity.table} {p} "
        f"WHERE {where(p, bounds)} ORDER BY {travel} LIMIT {size + 1}"
    )
    row = c.alias()
    cursor = (
        f"translate(encode(convert_to('{ordering.name}:' || {row}.id || ':' || "
        f"{ordering.codec.sql.format(f'{row}.{key_column}')}, 'UTF8'), 'base64'), "
        f"E'+/=\\n', '-_')"
    )
    output_order = f"{row}.rn" if window.forward else f"{row}.rn DESC"
    reverse_order = f"{row}.rn DESC" if window.forward else f"{row}.rn"
    kept = f"FILTER (WHERE {row}.rn <= {size})"
    more = f"(count(*) > {size})"

    def behind() -> str:
        """Whether rows exist on the side we came from; its parameters are added only if asked."""
        if came_from is None:
            return "false"
        b = c.alias()
        back = _beyond(c, ordering, came_from, forward=window.forward, key=key_column)
        return f"EXISTS (SELECT 1 FROM {entity.table} {b} WHERE {where(b, [f'NOT ({back})'])})"

    def edge_value(name: str, field_nodes: list[FieldNode]) -> str:
        if name == "cursor":
            return cursor
        if name == "node":
            return node_object(c, entity, field_nodes, row)
        raise NotPlannable(name)

    def page_info_value(name: str, _: list[FieldNode]) -> str:
        if name == "hasNextPage":
            return more if window.forward else behind()
        if name == "hasPreviousPage":
            return behind() if window.forward else more
        if name == "startCursor":
            return f"(array_agg({cursor} ORDER BY {output_order}) {kept})[1]"
        if name == "endCursor":
            return f"(array_agg({cursor} ORDER BY {reverse_order}) {kept})[1]"
        raise NotPlannable(name)

    def connection_value(name: str, field_nodes: list[FieldNode]) -> str:
        if name == "edges":
            edge = c.json_object(f"{entity.type_name}Edge", field_nodes, edge_value)
            return f"coalesce(json_agg({edge} ORDER BY {output_order}) {kept}, '[]'::json)"
        if name == "pageInfo":
            return c.json_object("PageInfo", field_nodes, page_info_value)
        if name == "totalCount":
            t = c.alias()
            return f"(SELECT count(*) FROM {entity.table} {t} WHERE {where(t, [])})"
        raise NotPlannable(name)

    body = c.json_object(f"{entity.type_name}Connection", nodes, connection_value)
    # GROUP BY (): one row even when nothing aggregates (only totalCount asked) or no row matched.
    return f"(SELECT {body} FROM ({page}) {row} GROUP BY ())"


def _beyond(
    c: Compilation, ordering: Ordering, cursor: tuple[Any, int], *, forward: bool, key: str
) -> str:
    """Rows strictly past `cursor` in the direction of travel, as a row comparison."""
    ascending = ordering.descending != forward
    operator = ">" if ascending else "<"
    return f"({{t}}.{key}, {{t}}.id) {operator} ({c.param(cursor[0])}, {c.param(cursor[1])})"
