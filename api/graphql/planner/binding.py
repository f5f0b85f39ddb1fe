"""Each request's argument values, read off a planned document's tree.

A planned document is compiled to SQL once per *shape*: which ordering each connection uses
and which way it travels, whether any filter is given (and if none, which cursors), which
entity `node(id:)` names, which input fields with a column default a create sets. Everything
else is a bind parameter: page sizes, ids, written values (null for a field left out), and,
once some filter is given, every filter and cursor, given or not. A filter or cursor left
out then binds NULL, which its null-guarded condition reads as "no condition"
(`compiler.Builder.connection`), so a connection has three shapes per ordering and direction
(lean with and without a cursor to travel from, and guarded), not the 2^n combinations of
its arguments.

`Walk` goes through the tree once per operation, in the order the compiler builds the SQL, and
lists the fields that take arguments (the steps); each request's `Binder` runs those steps over
its variables and returns the shape and the values in that order, parameter i being the
compiler's `v{i}`.

Argument values the ordinary path would refuse raise `Rejected`, so that path answers with its
own error; an input key the planner does not know raises `NotPlannable`.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    VariableNode,
    is_non_null_type,
    is_required_argument,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.utilities.coerce_input_value import coerce_default_value, coerce_input_literal

from api.catalog.describe import (
    Cardinality,
    Entity,
    InvalidFilter,
    InvalidPageRequest,
)
from api.catalog.entities import ENTITIES
from api.catalog.ids import decode_id
from api.catalog.pagination import page_window
from api.catalog.problems import InvalidValue
from api.graphql.planner.document import NotPlannable, Selection, has_variable
from api.graphql.surface import SURFACE, Role

PAGE_ARGUMENTS = frozenset({"first", "after", "last", "before", "orderBy", "filter"})
NO_CURSOR = (None, None)  # a cursor's (key, id) when it is not given


class Rejected(Exception):
    """An argument value the ordinary path answers with an error."""


class ConnectionShape(NamedTuple):
    """Whatever changes a connection's SQL; a named tuple, as one is made per request.

    The ordering (its key's type and index) and the direction of travel. `guarded`: some
    filter is given, or a cursor against the direction of travel (`first` with `before`), so
    every filter and both cursors are bound, NULL when left out, and the statement is planned
    with its values each run. Otherwise (lean: the plain pages clients ask for) no filter is
    written, and `cursor` says whether the page starts from one (`after` going forward).
    """

    ordering: str
    forward: bool
    guarded: bool = False
    cursor: bool = False


class Binding(NamedTuple):
    shape: list[Hashable]
    values: list[Any]


ArgumentSource = tuple[str, str | None, Any, bool]
"""An argument's key in the values, the variable it reads (None: the constant that follows
is its value), and whether the argument refuses null."""


def argument_sources(
    definition: GraphQLField, node: FieldNode
) -> tuple[ArgumentSource, ...] | None:
    """Where each argument's value comes from, worked out once per field of a document.

    None when graphql-core must read them on every request: a required argument left out, a
    literal it would refuse, or a variable inside a list or an input object.
    """
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
    sources: list[ArgumentSource] = []
    for name, argument in definition.args.items():
        key = argument.out_name or name
        value = given.get(name)
        if value is None:
            if is_required_argument(argument):
                return None
            default = coerce_default_value(argument)
            if default is not Undefined:
                sources.append((key, None, default, False))
        elif isinstance(value, VariableNode):
            sources.append((key, value.name.value, None, is_non_null_type(argument.type)))
        elif has_variable(value):
            return None
        else:
            literal = coerce_input_literal(value, argument.type)
            if literal is Undefined:
                return None
            sources.append((key, None, literal, False))
    return tuple(sources)


def read_sources(
    sources: tuple[ArgumentSource, ...], coerced: dict[str, Any]
) -> dict[str, Any] | None:
    """The arguments as `get_argument_values` gives them, when every variable has a value
    that its argument takes; None otherwise (a variable left out falls back to the argument's
    default, a null to an error), and `get_argument_values` then reads them."""
    values: dict[str, Any] = {}
    for key, variable, constant, refuses_null in sources:
        if variable is None:
            values[key] = constant
            continue
        if variable not in coerced:
            return None
        value = coerced[variable]
        if value is None and refuses_null:
            return None
        values[key] = value
    return values


@dataclass(frozen=True)
class Site:
    """A field whose arguments feed the shape and the values, and how they are read."""

    parent: str
    selection: Selection
    definition: GraphQLField
    sources: tuple[ArgumentSource, ...] | None


class Step(Protocol):
    def bind(self, binder: "Binder") -> None: ...


@dataclass(frozen=True)
class EntityStep:
    """A step at a field that reads or writes one entity: the field, and that entity."""

    site: Site
    entity: Entity


class Lookup(EntityStep):
    """`author(id:)`: the key inside the id."""

    def bind(self, binder: "Binder") -> None:
        key = binder.key(binder.arguments(self.site)["id"], self.entity.name)
        binder.bound.values.append(key)


@dataclass(frozen=True)
class NodeLookup:
    """`node(id:)`: the entity the id names is part of the shape; its selections follow."""

    site: Site
    by_entity: dict[str, tuple[Step, ...]]

    def bind(self, binder: "Binder") -> None:
        entity, key = binder.node_key(binder.arguments(self.site)["id"])
        binder.bound.shape.append(entity.name)
        binder.bound.values.append(key)
        for step in self.by_entity[entity.name]:
            step.bind(binder)


class PageOf(EntityStep):
    """A connection: its ordering, direction, cursors and filters, and their values."""

    def bind(self, binder: "Binder") -> None:
        binder.connection(self.entity, self.site)


class Create(EntityStep):
    """A create mutation's input: which fields are set (the shape), and their values."""

    def bind(self, binder: "Binder") -> None:
        binder.create(self.entity, self.site)


@dataclass(frozen=True)
class Walk:
    """The tree's fields that take arguments, in the order the compiler reads them.

    Walked once per operation, so that a request only reads its values.
    """

    schema: GraphQLSchema

    def query(self, root: dict[str, Selection]) -> tuple[Step, ...]:
        steps: list[Step] = []
        for selection in root.values():
            name = selection.name
            if name == "__typename":
                continue
            site = self.site("Query", selection)
            described = SURFACE.field("Query", name)
            role = described.role if described is not None else None
            entity = described.entity if described is not None else None
            if entity is not None and role is Role.CONNECTION:
                steps.append(PageOf(site, entity))
                steps.extend(self.connection(entity, selection))
            elif entity is not None and role is Role.OBJECT:
                steps.append(Lookup(site, entity))
                steps.extend(self.entity(entity, selection.on(entity.name)))
            elif role is Role.ANY_NODE:
                by_entity = {
                    entity.name: self.entity(entity, selection.on(entity.name))
                    for entity in ENTITIES.values()
                }
                steps.append(NodeLookup(site, by_entity))
            else:
                raise NotPlannable(name)
        return tuple(steps)

    def create(self, entity: Entity, selection: Selection) -> tuple[Step, ...]:
        steps: list[Step] = [Create(self.site("Mutation", selection), entity)]
        for item in selection.on(entity.payload_type("Create")).values():
            if item.name == entity.field_name:
                steps.extend(self.entity(entity, item.on(entity.name)))
        return tuple(steps)

    def site(self, parent: str, selection: Selection) -> Site:
        parent_type = self.schema.get_type(parent)
        if not isinstance(parent_type, GraphQLObjectType):
            raise NotPlannable(parent)
        definition = parent_type.fields.get(selection.name)
        if definition is None:
            raise NotPlannable(f"{parent}.{selection.name}")
        return Site(parent, selection, definition, argument_sources(definition, selection.node))

    def entity(self, entity: Entity, selections: dict[str, Selection]) -> tuple[Step, ...]:
        steps: list[Step] = []
        for selection in selections.values():
            relation = entity.relation(selection.name)
            if relation is None:
                continue
            target = ENTITIES[relation.target]
            if relation.cardinality is Cardinality.MANY:
                steps.append(PageOf(self.site(entity.name, selection), target))
                steps.extend(self.connection(target, selection))
            else:
                steps.extend(self.entity(target, selection.on(target.name)))
        return tuple(steps)

    def connection(self, entity: Entity, selection: Selection) -> tuple[Step, ...]:
        steps: list[Step] = []
        for edges in selection.on(entity.connection_type).values():
            if edges.name == "edges":
                for node in edges.on(entity.edge_type).values():
                    if node.name == "node":
                        steps.extend(self.entity(entity, node.on(entity.name)))
        return tuple(steps)


class Binder:
    """One request's binding: runs an operation's steps over its variables.

    A plain class with slots: one is made per request, and its attributes are read often.
    """

    __slots__ = ("bound", "coerced", "default_page_size", "max_page_size", "variables")

    def __init__(
        self, variables: VariableValues, default_page_size: int, max_page_size: int
    ) -> None:
        self.variables = variables
        self.coerced = variables.coerced
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.bound = Binding([], [])

    def run(self, steps: tuple[Step, ...]) -> Binding:
        for step in steps:
            step.bind(self)
        return self.bound

    def arguments(self, site: Site) -> dict[str, Any]:
        """The field's argument values; read once for a field that uses no variable."""
        selection = site.selection
        values = selection.constant_arguments
        if values is not None:
            return values
        if site.sources is not None:
            values = read_sources(site.sources, self.coerced)
        if values is None:
            try:
                values = get_argument_values(site.definition, selection.node, self.variables)
            except GraphQLError as error:
                raise Rejected(error.message) from None
        if not selection.uses_variables:
            selection.constant_arguments = values
        return values

    def key(self, value: Any, type_name: str) -> int:
        try:
            return decode_id(value, type_name=type_name, field=("id",))
        except InvalidValue as invalid:
            raise Rejected(invalid.problem.message) from None

    @staticmethod
    def node_key(value: Any) -> tuple[Entity, int]:
        for entity in ENTITIES.values():
            try:
                return entity, decode_id(value, type_name=entity.name, field=("id",))
            except InvalidValue:
                continue
        raise Rejected("not the id of any entity")

    def connection(self, entity: Entity, site: Site) -> None:
        selection = site.selection
        bound = selection.constant_binding
        if bound is None:
            bound = self.page(entity, self.arguments(site))
            if not selection.uses_variables:
                selection.constant_binding = bound
        shape, values = bound
        self.bound.shape.append(shape)
        self.bound.values.extend(values)

    def page(self, entity: Entity, args: dict[str, Any]) -> tuple[ConnectionShape, list[Any]]:
        """A connection's shape and values, from its arguments."""
        if not PAGE_ARGUMENTS.issuperset(args):
            raise NotPlannable(f"arguments {sorted(set(args) - PAGE_ARGUMENTS)}")
        order = args.get("orderBy")
        ordering = entity.ordering(getattr(order, "_value_", order))  # an enum member, or None
        try:
            window = page_window(
                ordering,
                first=args.get("first"),
                after=args.get("after"),
                last=args.get("last"),
                before=args.get("before"),
                default_size=self.default_page_size,
                max_size=self.max_page_size,
            )
        except InvalidPageRequest as error:
            raise Rejected(str(error)) from None
        given = {k: v for k, v in (args.get("filter") or {}).items() if v is not None}
        values: list[Any] = []
        for name in given:
            if entity.filter(name) is None:
                raise NotPlannable(f"filter {name}")
        start, against = (
            (window.after, window.before) if window.forward else (window.before, window.after)
        )
        if not given and against is None:  # lean: the cursor travelled from, and the size
            if start is not None:
                values.extend(start)
            values.append(window.size)
            return ConnectionShape(ordering.name, window.forward, cursor=start is not None), values
        for described in entity.filters:  # every filter, in the compiler's order; NULL: not given
            if described.name not in given:
                values.append(None)
                continue
            try:
                values.append(described.value(given[described.name]))
            except InvalidFilter as error:
                raise Rejected(str(error)) from None
        for cursor in (window.after, window.before):
            values.extend(cursor if cursor is not None else NO_CURSOR)
        values.append(window.size)
        return ConnectionShape(ordering.name, window.forward, guarded=True), values

    def create(self, entity: Entity, site: Site) -> None:
        args = self.arguments(site)
        if set(args) != {"input"}:
            raise NotPlannable("create takes one input")
        given: dict[str, Any] = args["input"]
        for key in given:
            described = entity.field(key)
            if described is None or not described.creatable:
                raise NotPlannable(f"input {key}")
        missing = [
            f.name for f in entity.fields if f.creatable and f.required and f.name not in given
        ]
        if missing:
            raise NotPlannable(f"missing {missing}")
        # Every field a create may set, in the entity's order whatever order the client sent
        # them in; one left out is null, as its column would store, unless the column has a
        # default of its own: only those fork the shape.
        keys = tuple(
            f.name for f in entity.fields if f.creatable and (f.name in given or not f.defaulted)
        )
        for key in keys:
            described = entity.field(key)
            assert described is not None
            try:
                self.bound.values.append(described.clean(given.get(key), (key,)))
            except InvalidValue as error:
                raise Rejected(error.problem.message) from None
        self.bound.shape.append(keys)
