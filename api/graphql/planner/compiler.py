"""One SQL statement for a planned document and shape, built with SQLAlchemy Core.

The statement returns the whole response body, `{"data":…}`, as UTF-8 bytes. Pages, bounds,
filters and cursors come from the entity descriptions (`api.catalog.describe`), the same
pieces the ordinary path's reads use. Every table is read through an anonymous alias, and no
helper column ever shares a select list with a table's columns, so no column name a
migration adds can collide with the planner's own names.

Parameters are created in the order `binding.Binder` reads the values (`v0`, `v1`, …); the
compiled statement is cached per shape and only re-bound per request.
"""

import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.sql.util import ClauseAdapter

from api.catalog.counts import exact_row_count
from api.catalog.describe import Cardinality, Entity, Field, Kind
from api.graphql.planner.binding import ConnectionShape
from api.graphql.planner.document import NotPlannable, Selection
from api.graphql.planner.json_text import (
    concat,
    field_json,
    json_array,
    json_object,
    json_scalar,
    json_string_constant,
    or_null,
    sql_text,
)
from api.graphql.surface import SURFACE, Role, Surface

DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
BIND_TYPES = {Kind.TEXT: String(), Kind.INT: Integer(), Kind.REFERENCE: Integer()}
BIND_TYPES[Kind.TIMESTAMP] = DateTime(timezone=True)
VALUE = re.compile(r"v\d+")


@dataclass(frozen=True)
class Parent:
    """The row a nested connection hangs from, and the condition tying a child to it."""

    row: FromClause
    condition: Callable[[FromClause], ColumnElement[bool]]


@dataclass(frozen=True)
class CompiledPlan:
    """SQL text, and where each of its `$n` takes its value: `v{i}` or a constant.

    `custom`: the statement holds `$n IS NULL OR …` guards, so it must be planned with its
    values on every run (`api.db.reads.PlannerPool.fetch_value`); a generic plan would keep
    the guards and could not choose an index by them.
    """

    sql: str
    # Per `$n`: the index of the request's value it takes, or None for a constant's.
    slots: tuple[tuple[int | None, Any], ...]
    custom: bool = False

    def parameters(self, values: list[Any]) -> list[Any]:
        return [constant if index is None else values[index] for index, constant in self.slots]


def compile_plan(statement: Select[Any], *, custom: bool = False) -> CompiledPlan:
    compiled = statement.compile(dialect=DIALECT)
    slots = []
    for name in compiled.positiontup or ():
        value = VALUE.fullmatch(name)
        slots.append((int(name[1:]), None) if value else (None, compiled.params[name]))
    return CompiledPlan(str(compiled), tuple(slots), custom)


def column_name(described: Field) -> str:
    return str(described.column.expression.name)


@dataclass
class Builder:
    shape: Iterator[Hashable]
    parameters: int = 0
    writing: bool = False  # a statement that inserts cannot read its new row elsewhere
    guarded: bool = False  # a connection's conditions are null-guarded: plan with the values
    surface: Surface = SURFACE
    params: list[BindParameter[Any]] = field(default_factory=list)

    def param(self, type_: Any) -> BindParameter[Any]:
        parameter = bindparam(f"v{self.parameters}", type_=type_)
        self.parameters += 1
        return parameter

    # Objects -------------------------------------------------------------------------

    def entity_object(
        self, entity: Entity, selections: dict[str, Selection], row: FromClause
    ) -> ColumnElement[str]:
        pairs = []
        for key, selection in selections.items():
            pairs.append((key, self.entity_value(entity, selection, row)))
        return json_object(pairs)

    def entity_value(
        self, entity: Entity, selection: Selection, row: FromClause
    ) -> ColumnElement[str]:
        name = selection.name
        if name == "__typename":
            return json_string_constant(entity.name)
        if name == "id":
            text = sql_text(f"{entity.name}:").concat(cast(row.c.id, Text))
            encoded = func.encode(func.convert_to(text, sql_text("UTF8")), sql_text("base64"))
            return concat([sql_text('"'), encoded, sql_text('"')])
        if name == "databaseId":
            return cast(row.c.id, Text)
        described = entity.field(name)
        if described is not None and described.readable:
            return field_json(described.kind, row.c[column_name(described)])
        relation = entity.relation(name)
        if relation is None:
            raise NotPlannable(f"{entity.name}.{name}")
        target = self.surface.entities[relation.target]
        local = row.c[relation.local.key]
        if relation.cardinality is Cardinality.MANY:
            if self.writing:
                raise NotPlannable("a page would not see the row being written")
            remote = relation.remote
            return self.connection(
                target,
                selection,
                Parent(row, lambda alias: ClauseAdapter(alias).traverse(remote == local)),
            )
        alias = target.table.alias()
        found = select(self.entity_object(target, selection.on(target.name), alias)).where(
            alias.c[relation.remote.key] == local
        )
        return or_null(found.scalar_subquery())

    def lookup(self, entity: Entity, selection: Selection) -> ColumnElement[str]:
        key = self.param(Integer())
        alias = entity.table.alias()
        found = select(self.entity_object(entity, selection.on(entity.name), alias)).where(
            alias.c.id == key
        )
        return or_null(found.scalar_subquery())

    # Connections -----------------------------------------------------------------------

    def connection(
        self, entity: Entity, selection: Selection, parent: "Parent | None" = None
    ) -> ColumnElement[str]:
        shape = next(self.shape)
        assert isinstance(shape, ConnectionShape)
        ordering = entity.orderings[shape.ordering]
        # A guarded shape (`binding.ConnectionShape`) binds every filter and both cursors,
        # NULL when not given, each condition behind `$n IS NULL OR …`: Postgres folds the
        # guards away when it plans with the values, which such a statement always is
        # (`CompiledPlan.custom`), so each request is planned as if only its own conditions
        # were written. A lean shape writes only the cursor it travels from, if any,
        # unguarded: a plan made once for any values serves it as well, so Postgres may keep
        # one.
        guarded = shape.guarded
        self.guarded |= guarded
        filters = [
            (described, self.param(self.filter_type(entity, described.name)))
            for described in (entity.filters if guarded else ())
        ]
        key_type = BIND_TYPES[ordering.key.field.kind]
        after = before = None
        if guarded or (shape.cursor and shape.forward):
            after = (self.param(key_type), self.param(Integer()))
        if guarded or (shape.cursor and not shape.forward):
            before = (self.param(key_type), self.param(Integer()))
        size = self.param(Integer())

        def scope(alias: FromClause) -> list[ColumnElement[bool]]:
            adapt = ClauseAdapter(alias).traverse
            clauses = [
                or_(value.is_(None), adapt(described.clause(value))) for described, value in filters
            ]
            return clauses + ([parent.condition(alias)] if parent else [])

        table = entity.table.alias()
        adapt = ClauseAdapter(table).traverse
        bounds = []
        for given, forward in ((after, True), (before, False)):
            if given is not None:
                beyond = adapt(ordering.beyond(*given, forward=forward))
                bounds.append(or_(given[1].is_(None), beyond) if guarded else beyond)
        travel = [adapt(c) for c in ordering.order_by(reverse=not shape.forward)]
        page_select = (
            select(*(table.c[c.expression.name] for c in entity.columns))
            .where(*scope(table), *bounds)
            .order_by(*travel)
            .limit(size + 1)
        )
        page = page_select.correlate(parent.row).lateral() if parent else page_select.subquery()
        on_page = ClauseAdapter(page).traverse
        sort_order = [on_page(c) for c in ordering.order_by()]
        rows = func.count()
        # Rows in sort order; the page holds one row past its size in the direction of travel.
        low = 1 if shape.forward else func.greatest(rows - size, 0) + 1
        high = func.least(rows, size) if shape.forward else rows

        def in_sort_order(element: ColumnElement[str]) -> ColumnElement[Any]:
            return func.array_agg(aggregate_order_by(element, *sort_order), type_=ARRAY(Text))

        def in_page(element: ColumnElement[str]) -> ColumnElement[Any]:
            return in_sort_order(element)[low:high]

        came_from = after if shape.forward else before
        sort_key = on_page(ordering.sort_key())
        cursor = ordering.cursor_sql(sort_key, page.c.id)

        def behind() -> ColumnElement[str]:
            if came_from is None:  # no cursor behind the page, so no row behind it
                return bool_text(false())
            back = entity.table.alias()
            adapt_back = ClauseAdapter(back).traverse
            before_page = adapt_back(ordering.not_beyond(*came_from, forward=shape.forward))
            # The nearest row behind the cursor, by walking the index back from it; EXISTS
            # would drop the ORDER BY, and a sequential scan may then search the whole table.
            nearest = (
                select(true())
                .where(*scope(back), before_page)
                .order_by(*(adapt_back(c) for c in ordering.order_by(reverse=shape.forward)))
                .limit(1)
            )
            found = (nearest.correlate(parent.row) if parent else nearest).scalar_subquery()
            any_row = func.coalesce(found, false())
            if not guarded:
                return bool_text(any_row)
            # No cursor behind: false, and the subquery is folded away before it is planned.
            return bool_text(and_(came_from[1].is_not(None), any_row))

        def page_info(info: Selection) -> ColumnElement[str]:
            pairs = []
            more = bool_text(rows > size)
            for key, item in info.on("PageInfo").items():
                if item.name == "__typename":
                    value = json_string_constant("PageInfo")
                elif item.name == "hasNextPage":
                    value = more if shape.forward else behind()
                elif item.name == "hasPreviousPage":
                    value = behind() if shape.forward else more
                elif item.name == "startCursor":
                    value = json_scalar(case((low <= high, in_sort_order(cursor)[low])))
                elif item.name == "endCursor":
                    value = json_scalar(case((low <= high, in_sort_order(cursor)[high])))
                else:
                    raise NotPlannable(f"PageInfo.{item.name}")
                pairs.append((key, value))
            return json_object(pairs)

        def edge(item: Selection) -> ColumnElement[str]:
            pairs = []
            for key, part in item.on(entity.edge_type).items():
                if part.name == "__typename":
                    pairs.append((key, json_string_constant(entity.edge_type)))
                elif part.name == "cursor":
                    pairs.append((key, json_scalar(cursor)))
                elif part.name == "node":
                    pairs.append((key, self.entity_object(entity, part.on(entity.name), page)))
                else:
                    raise NotPlannable(f"{entity.edge_type}.{part.name}")
            return json_object(pairs)

        pairs = []
        for key, item in selection.on(entity.connection_type).items():
            if item.name == "__typename":
                pairs.append((key, json_string_constant(entity.connection_type)))
            elif item.name == "edges":
                pairs.append((key, json_array(in_page(edge(item)))))
            elif item.name == "pageInfo":
                pairs.append((key, page_info(item)))
            elif item.name == "totalCount":
                counted = entity.table.alias()
                conditions = scope(counted)
                total = select(func.count()).select_from(counted).where(*conditions)
                if parent:
                    total = total.correlate(parent.row)
                count: ColumnElement[Any] = total.scalar_subquery()
                if not parent:  # no filter given: the whole table's exact count, kept by triggers
                    whole = select(exact_row_count(entity.model)).scalar_subquery()
                    unfiltered = [value.is_(None) for _, value in filters]
                    count = case((and_(*unfiltered), whole), else_=count) if unfiltered else whole
                pairs.append((key, cast(count, Text)))
            else:
                raise NotPlannable(f"{entity.connection_type}.{item.name}")
        # GROUP BY (): one row even when nothing aggregates (only totalCount is asked).
        grouped = select(json_object(pairs)).select_from(page).group_by(literal_column("()"))
        return grouped.scalar_subquery()

    @staticmethod
    def filter_type(entity: Entity, name: str) -> Any:
        described = entity.filters_by_name[name]
        if described.field.kind is Kind.TEXT:
            return String()
        return BIND_TYPES[described.field.kind]


def bool_text(condition: ColumnElement[bool]) -> ColumnElement[str]:
    return cast(condition, Text)


def response(data: ColumnElement[str]) -> Select[Any]:
    """`{"data":…}` as UTF-8 bytes, sent without decoding it again."""
    body = concat([sql_text('{"data":'), data, sql_text("}")])
    return select(func.convert_to(body, sql_text("UTF8")))


def compile_query(
    root: dict[str, Selection], shape: list[Hashable], surface: Surface = SURFACE
) -> CompiledPlan:
    builder = Builder(iter(shape), surface=surface)
    pairs = []
    for key, selection in root.items():
        name = selection.name
        described = surface.field("Query", name)
        role = described.role if described is not None else None
        if name == "__typename":
            pairs.append((key, json_string_constant("Query")))
        elif described is not None and described.entity and role is Role.CONNECTION:
            pairs.append((key, builder.connection(described.entity, selection)))
        elif described is not None and described.entity and role is Role.OBJECT:
            pairs.append((key, builder.lookup(described.entity, selection)))
        elif role is Role.ANY_NODE:
            entity = surface.entities[str(next(builder.shape))]
            pairs.append((key, builder.lookup(entity, selection)))
        else:
            raise NotPlannable(name)
    return compile_plan(response(json_object(pairs)), custom=builder.guarded)
