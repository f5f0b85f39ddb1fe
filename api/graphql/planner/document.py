"""A validated operation as a tree of selections, built once per document.

Fields are collected as GraphQL's CollectFields does: by response key, each named fragment
expanded at most once per selection set. Expanding a spread anew every time it occurs makes
a 1 KB document of fragments that spread the next one twice cost 2^30 steps; here the work is
bounded by the document's size, and a budget caps it outright.

The tree only knows what the planner covers: a field, type condition or directive it does not
know raises `NotPlannable`, so the ordinary path answers instead.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    NameNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from api.graphql.surface import SURFACE, ChildTypes, Surface

MAX_SELECTIONS = 2000
"""Selections one document may hold once collected; larger ones go to the ordinary path."""


class NotPlannable(Exception):
    """The document uses something the planner does not cover."""


@dataclass
class Selection:
    """One response key: the field it names, its first node (for arguments), its children.

    `children` maps a concrete type name to the selections made on it; only `node(id:)`
    has more than one.
    """

    key: str
    name: str
    node: FieldNode
    children: dict[str, dict[str, "Selection"]] = field(default_factory=dict)
    # Read once for a field that uses no variable: its arguments, and a connection's binding.
    constant_arguments: dict[str, Any] | None = None
    constant_binding: tuple[Any, list[Any]] | None = None

    @cached_property
    def uses_variables(self) -> bool:
        return any(has_variable(argument.value) for argument in self.node.arguments or ())

    def on(self, type_name: str) -> dict[str, "Selection"]:
        return self.children.get(type_name, {})


@dataclass
class Collector:
    fragments: dict[str, FragmentDefinitionNode]
    surface: Surface = SURFACE
    visited: int = 0

    def collect(
        self, selection_sets: Iterable[SelectionSetNode], type_name: str, abstract: str | None
    ) -> dict[str, list[FieldNode]]:
        """Field nodes by response key, each fragment spread expanded once."""
        fields: dict[str, list[FieldNode]] = {}
        seen_fragments: set[str] = set()
        pending = [s.selections for s in selection_sets]
        while pending:
            for selection in pending.pop(0):
                self.visited += 1
                if self.visited > MAX_SELECTIONS:
                    raise NotPlannable("too many selections")
                if selection.directives:
                    raise NotPlannable("directives")
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    if name in seen_fragments:
                        continue
                    seen_fragments.add(name)
                    fragment = self.fragments[name]
                    condition: str | None = fragment.type_condition.name.value
                    nested = fragment.selection_set
                elif isinstance(selection, InlineFragmentNode):
                    condition = (
                        selection.type_condition.name.value if selection.type_condition else None
                    )
                    nested = selection.selection_set
                else:
                    raise NotPlannable(type(selection).__name__)
                if condition is None or condition in (type_name, abstract):
                    pending.append(nested.selections)
                elif condition not in self.surface.entities and condition != "Node":
                    raise NotPlannable(f"fragment on {condition}")
        return fields


@dataclass
class TreeBuilder:
    collector: Collector
    surface: Surface = SURFACE

    def selections(
        self, nodes: list[FieldNode], type_name: str, abstract: str | None = None
    ) -> dict[str, Selection]:
        sets = [n.selection_set for n in nodes if n.selection_set is not None]
        collected = self.collector.collect(sets, type_name, abstract)
        return {
            key: self.child(key, field_nodes, type_name) for key, field_nodes in collected.items()
        }

    def child(self, key: str, nodes: list[FieldNode], parent: str) -> Selection:
        name = nodes[0].name.value
        if any(n.name.value != name for n in nodes):
            raise NotPlannable("one key, several fields")
        selection = Selection(key, name, nodes[0])
        for type_name, abstract in self.child_types(parent, name):
            selection.children[type_name] = self.selections(nodes, type_name, abstract)
        return selection

    def child_types(self, parent: str, name: str) -> ChildTypes:
        """The concrete types a field's selection applies to (none for a scalar).

        Looked up in the field table derived from the descriptions: a field it does not
        hold (an update, a seed, anything new) is not planned.
        """
        described = self.surface.field(parent, name)
        if described is None:
            raise NotPlannable(f"{parent}.{name}")
        return described.children


def has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(has_variable(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(has_variable(f.value) for f in value.fields)
    return False


def operation_tree(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    surface: Surface = SURFACE,
) -> tuple[dict[str, Selection], int]:
    """The operation's root selections, and how many selections were visited to build them."""
    root_type = {"query": "Query", "mutation": "Mutation"}.get(operation.operation.value)
    if root_type is None:
        raise NotPlannable(operation.operation.value)
    builder = TreeBuilder(Collector(fragments, surface), surface)
    root = FieldNode(name=NameNode(value="data"), selection_set=operation.selection_set)
    return builder.selections([root], root_type), builder.collector.visited
