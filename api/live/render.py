"""Rendering events: the change's own fields in Python, its `node` by the query planner.

A subscription's selection on `…Change` is read once, when it opens: which response keys
ask for `cursor`, `kind`, `id`, `__typename`, and which ask for `node`, with what selection.
Each `node` selection becomes a query of `node(id:)` lookups, one alias per changed row,
that the planner answers in one statement for a whole batch of changes (the resolvers, when
the planner cannot). Subscriptions whose node selections are the same share every render.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    print_ast,
    visit,
)
from graphql.language import Visitor

BUCKETS = (1, 2, 4, 8, 16, 32, 64)
"""Rows per render query: a batch is padded to one of these, so each shape has few plans."""
MAX_BUCKET = BUCKETS[-1]


class Unsupported(ValueError):
    """A selection this renderer does not cover (refused when the subscription opens)."""


def included(node: Any, variables: dict[str, Any]) -> bool:
    """@skip and @include, with literal or variable conditions."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        (argument,) = directive.arguments
        value = argument.value
        if isinstance(value, VariableNode):
            condition = bool(variables.get(value.name.value))
        elif isinstance(value, BooleanValueNode):
            condition = value.value
        else:
            raise Unsupported("a @skip or @include condition must be a boolean")
        if condition == (name == "skip"):
            return False
    return True


def collect(
    selection_set: SelectionSetNode,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> dict[str, list[FieldNode]]:
    """The fields selected on `type_name`, by response key (GraphQL's CollectFields)."""
    fields: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def walk(selections: SelectionSetNode) -> None:
        for selection in selections.selections:
            if not included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_name:
                    walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments[name]
                if name not in visited and fragment.type_condition.name.value == type_name:
                    visited.add(name)
                    walk(fragment.selection_set)

    walk(selection_set)
    return fields


class _Uses(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.variables: set[str] = set()
        self.fragments: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.variables.add(node.name.value)

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.fragments.add(node.name.value)


def _uses(
    nodes: Iterable[Any], fragments: dict[str, FragmentDefinitionNode]
) -> tuple[list[str], set[str]]:
    """The fragments `nodes` spread (transitively, in a stable order) and the variables used."""
    found: list[str] = []
    variables: set[str] = set()
    pending = list(nodes)
    while pending:
        uses = _Uses()
        visit(pending.pop(), uses)
        variables |= uses.variables
        for name in sorted(uses.fragments):
            if name not in found:
                found.append(name)
                pending.append(fragments[name])
    return found, variables


@dataclass(frozen=True)
class NodeQuery:
    """A `node` selection as a lookup query; equal ones share renders."""

    type_name: str
    selection: str  # the printed selections, on the type
    fragments: str  # the fragment definitions they spread
    variable_definitions: tuple[str, ...]
    variable_values: bytes  # JSON of the variables the selection reads

    def text(self, rows: int) -> str:
        """The query for `rows` lookups."""
        definitions = [f"$live{i}: ID!" for i in range(rows)]
        definitions.extend(self.variable_definitions)
        lookups = " ".join(
            f"n{i}: node(id: $live{i}) {{ ... on {self.type_name} {self.selection} }}"
            for i in range(rows)
        )
        return f"query LiveNodes({', '.join(definitions)}) {{ {lookups} }}\n{self.fragments}"

    def variables(self, global_ids: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = orjson.loads(self.variable_values)
        values.update({f"live{i}": global_id for i, global_id in enumerate(global_ids)})
        return values


def node_query(
    type_name: str,
    nodes: list[FieldNode],
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    inputs: dict[str, Any],
) -> NodeQuery:
    """The lookup query for the `node` fields under one response key."""
    selection = " ".join(print_ast(n.selection_set) for n in nodes if n.selection_set)
    if not selection:
        raise Unsupported("`node` needs a selection")
    used_fragments, used_variables = _uses([n.selection_set for n in nodes], fragments)
    definitions = tuple(
        print_ast(definition)
        for definition in operation.variable_definitions or ()
        if definition.variable.name.value in used_variables
    )
    values = {name: inputs[name] for name in sorted(used_variables) if name in inputs}
    return NodeQuery(
        type_name,
        selection,
        "\n".join(print_ast(fragments[name]) for name in used_fragments),
        definitions,
        orjson.dumps(values, option=orjson.OPT_SORT_KEYS),
    )


CHANGE_FIELDS = ("cursor", "kind", "id", "node", "__typename")


@dataclass
class EventShape:
    """What one subscription's events look like: the root response key, and per key of the
    change object which field it shows (`node` keys with their lookup query)."""

    root_key: str
    change_type: str
    keys: list[tuple[str, str]]
    nodes: dict[str, NodeQuery] = field(default_factory=dict)

    def payload(self, cursor: str, kind: str, global_id: str, nodes: dict[str, Any]) -> bytes:
        """One event's execution result; `nodes` maps a node key to its rendered JSON."""
        values = {"cursor": cursor, "kind": kind, "id": global_id, "__typename": self.change_type}
        change = {
            key: nodes.get(key) if name == "node" else values[name] for key, name in self.keys
        }
        return orjson.dumps({"data": {self.root_key: change}})


def selection_variables(root: FieldNode, fragments: dict[str, FragmentDefinitionNode]) -> set[str]:
    """The variables the root field's selection reads (its own arguments left out): the
    only inputs two subscriptions' events can differ by, besides the document."""
    return _uses([root.selection_set], fragments)[1] if root.selection_set else set()


def event_shape(
    root: FieldNode,
    change_type: str,
    node_type: str,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    inputs: dict[str, Any],
) -> EventShape:
    """`variables`: coerced (defaults applied), for @skip and @include; `inputs`: as sent,
    for the node queries, which declare the same variables with the same defaults."""
    root_key = root.alias.value if root.alias else root.name.value
    assert root.selection_set is not None  # validation: an object type needs a selection
    collected = collect(root.selection_set, change_type, fragments, variables)
    shape = EventShape(root_key, change_type, [])
    for key, nodes in collected.items():
        name = nodes[0].name.value
        if name not in CHANGE_FIELDS:
            raise Unsupported(f"`{name}` is not a field of {change_type}")
        shape.keys.append((key, name))
        if name == "node":
            shape.nodes[key] = node_query(node_type, nodes, operation, fragments, inputs)
    return shape
