"""Each request's argument values, read off a planned document's tree.

A planned document is compiled to SQL once per *shape*: which ordering each connection uses,
which way it travels, which cursors and filters are given, which entity `node(id:)` names,
which input fields a write sets. Everything else (page sizes, cursors, filter values, ids,
written values) is a bind parameter. `bind` walks the tree in a fixed order and returns the
shape and the values in that order; the compiler walks the same way when it builds the SQL,
naming parameter i `v{i}`.

Argument values the ordinary path would refuse raise `Rejected`, so that path answers with its
own error; an input key the planner does not know raises `NotPlannable`.
"""

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
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
from graphql.utilities.coerce_input_value import coerce_default_value

from api.catalog.describe import (
    Cardinality,
    Entity,
    InvalidFilter,
    InvalidPageRequest,
    InvalidValue,
)
from api.catalog.entities import ENTITIES
from api.catalog.ids import decode_id
from api.catalog.pagination import page_window
from api.catalog.problems import Problem
from api.graphql.planner.document import (
    ROOT_CONNECTIONS,
    ROOT_LOOKUPS,
    NotPlannable,
    Selection,
)

PAGE_ARGUMENTS = frozenset({"first", "after", "last", "before", "orderBy", "filter"})


class Rejected(Exception):
    """An argument value the ordinary path answers with an error."""


@dataclass(frozen=True)
class ConnectionShape:
    ordering: str
    forward: bool
    after: bool
    before: bool
    filters: tuple[str, ...]


@dataclass
class Binding:
    shape: list[Hashable] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


@dataclass
class Binder:
    schema: GraphQLSchema
    variables: VariableValues
    default_page_size: int
    max_page_size: int
    bound: Binding = field(default_factory=Binding)

    def arguments(self, parent: str, selection: Selection) -> dict[str, Any]:
        """The field's argument values; read once for a field that uses no variable."""
        if selection.constant_arguments is not None:
            return selection.constant_arguments
        values = self.read_arguments(parent, selection)
        if not selection.uses_variables:
            selection.constant_arguments = values
        return values

    def read_arguments(self, parent: str, selection: Selection) -> dict[str, Any]:
        parent_type = self.schema.get_type(parent)
        if not isinstance(parent_type, GraphQLObjectType):
            raise NotPlannable(parent)
        definition = parent_type.fields.get(selection.name)
        if definition is None:
            raise NotPlannable(f"{parent}.{selection.name}")
        shortcut = self.variable_arguments(definition, selection)
        if shortcut is not None:
            return shortcut
        try:
            return get_argument_values(definition, selection.node, self.variables)
        except GraphQLError as error:
            raise Rejected(error.message) from None

    def variable_arguments(
        self, definition: GraphQLField, selection: Selection
    ) -> dict[str, Any] | None:
        """The arguments as `get_argument_values` gives them, when each is a variable with a
        value or left at its default; None for anything else (a literal, a null where one is
        not allowed), which `get_argument_values` then reads.
        """
        arguments = selection.node.arguments or ()
        given = {argument.name.value: argument.value for argument in arguments}
        coerced = self.variables.coerced
        values: dict[str, Any] = {}
        for name, argument in definition.args.items():
            key = argument.out_name or name
            node = given.get(name)
            if node is None:
                if is_required_argument(argument):
                    return None
                default = coerce_default_value(argument)
                if default is not Undefined:
                    values[key] = default
                continue
            if not isinstance(node, VariableNode) or node.name.value not in coerced:
                return None
            value = coerced[node.name.value]
            if value is None and is_non_null_type(argument.type):
                return None
            values[key] = value
        return values

    def query(self, root: dict[str, Selection]) -> Binding:
        for selection in root.values():
            name = selection.name
            if name == "__typename":
                continue
            args = self.arguments("Query", selection)
            if name in ROOT_CONNECTIONS:
                self.connection(ROOT_CONNECTIONS[name], selection, args)
            elif name in ROOT_LOOKUPS:
                entity = ROOT_LOOKUPS[name]
                self.bound.values.append(self.key(args["id"], entity.name))
                self.entity(entity, selection.on(entity.name))
            elif name == "node":
                entity, key = self.node_key(args["id"])
                self.bound.shape.append(entity.name)
                self.bound.values.append(key)
                self.entity(entity, selection.on(entity.name))
            else:
                raise NotPlannable(name)
        return self.bound

    def key(self, value: Any, type_name: str) -> int:
        decoded = decode_id(value, type_name=type_name, field=("id",))
        if isinstance(decoded, Problem):
            raise Rejected(decoded.message)
        return decoded

    @staticmethod
    def node_key(value: Any) -> tuple[Entity, int]:
        for entity in ENTITIES.values():
            decoded = decode_id(value, type_name=entity.name, field=("id",))
            if not isinstance(decoded, Problem):
                return entity, decoded
        raise Rejected("not the id of any entity")

    def entity(self, entity: Entity, selections: dict[str, Selection]) -> None:
        for selection in selections.values():
            relation = entity.relation(selection.name)
            if relation is None:
                continue
            target = ENTITIES[relation.target]
            if relation.cardinality is Cardinality.MANY:
                self.connection(target, selection, self.arguments(entity.name, selection))
            else:
                self.entity(target, selection.on(target.name))

    def connection(self, entity: Entity, selection: Selection, args: dict[str, Any]) -> None:
        bound = selection.constant_binding
        if bound is None:
            bound = self.page(entity, args)
            if not selection.uses_variables:
                selection.constant_binding = bound
        shape, values = bound
        self.bound.shape.append(shape)
        self.bound.values.extend(values)
        for edges in selection.on(f"{entity.name}Connection").values():
            if edges.name == "edges":
                for node in edges.on(f"{entity.name}Edge").values():
                    if node.name == "node":
                        self.entity(entity, node.on(entity.name))

    def page(self, entity: Entity, args: dict[str, Any]) -> tuple[ConnectionShape, list[Any]]:
        """A connection's shape and values, from its arguments."""
        unknown = set(args) - PAGE_ARGUMENTS
        if unknown:
            raise NotPlannable(f"arguments {sorted(unknown)}")
        order = args.get("orderBy")
        ordering = entity.ordering(getattr(order, "value", order))
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
        values = []
        for name in sorted(given):
            described = entity.filter(name)
            if described is None:
                raise NotPlannable(f"filter {name}")
            try:
                values.append(described.value(given[name]))
            except InvalidFilter as error:
                raise Rejected(str(error)) from None
        for cursor in (window.after, window.before):
            if cursor is not None:
                values.extend(cursor)
        values.append(window.size)
        shape = ConnectionShape(
            ordering.name,
            window.forward,
            window.after is not None,
            window.before is not None,
            tuple(sorted(given)),
        )
        return shape, values

    def create(self, entity: Entity, selection: Selection) -> None:
        """A create mutation's input: which fields are set (the shape), and their values."""
        args = self.arguments("Mutation", selection)
        if set(args) != {"input"}:
            raise NotPlannable("create takes one input")
        given: dict[str, Any] = args["input"]
        keys = tuple(given)
        for key in keys:
            described = entity.field(key)
            if described is None or not described.creatable:
                raise NotPlannable(f"input {key}")
            try:
                self.bound.values.append(described.clean(given[key], (key,)))
            except InvalidValue as error:
                raise Rejected(error.problem.message) from None
        missing = [
            f.name for f in entity.fields if f.creatable and f.required and f.name not in given
        ]
        if missing:
            raise NotPlannable(f"missing {missing}")
        self.bound.shape.append(keys)
        payload = selection.on(f"Create{entity.name}Payload")
        for item in payload.values():
            if item.name == entity.name.lower():
                self.entity(entity, item.on(entity.name))
