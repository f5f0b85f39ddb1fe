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

from api.catalog.describe import Cardinality, Entity
from api.catalog.entities import ENTITIES

MAX_SELECTIONS = 2000
"""Selections one document may hold once collected; larger ones go to the ordinary path."""

ROOT_CONNECTIONS = {entity.plural: entity for entity in ENTITIES.values()}
ROOT_LOOKUPS = {entity.name.lower(): entity for entity in ENTITIES.values()}
PAGE_INFO_FIELDS = frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"})
SEED_FIELD, SEED_PAYLOAD = "seedCatalog", "SeedCatalogPayload"  # planned in `planner.seed`


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
                elif condition not in ENTITIES and condition != "Node":
                    raise NotPlannable(f"fragment on {condition}")
        return fields


@dataclass
class TreeBuilder:
    collector: Collector

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

    def child_types(self, parent: str, name: str) -> list[tuple[str, str | None]]:
        """The concrete types a field's selection applies to (none for a scalar)."""
        if name == "__typename":
            return []
        if parent in ("Query", "Mutation"):
            if name in ROOT_CONNECTIONS:
                return [(f"{ROOT_CONNECTIONS[name].name}Connection", None)]
            if name in ROOT_LOOKUPS:
                return [(ROOT_LOOKUPS[name].name, "Node")]
            if name == "node":
                return [(entity, "Node") for entity in ENTITIES]
            if parent == "Mutation" and name == SEED_FIELD:
                return [(SEED_PAYLOAD, None)]
            if parent == "Mutation" and name.startswith("create"):
                return [(f"{name[0].upper()}{name[1:]}Payload", None)]
            raise NotPlannable(f"{parent}.{name}")
        if parent == SEED_PAYLOAD and name == "authors":
            return [(ENTITIES["Author"].name, "Node")]
        if parent.endswith("Payload"):
            entity = ENTITIES.get(parent.removeprefix("Create").removesuffix("Payload"))
            if entity is not None and name == entity.name.lower():
                return [(entity.name, "Node")]
            if name == "userErrors":  # a planned write only answers when it wrote: none
                return []
            raise NotPlannable(f"{parent}.{name}")
        if parent.endswith("Connection"):
            entity = ENTITIES[parent.removesuffix("Connection")]
            if name == "edges":
                return [(f"{entity.name}Edge", None)]
            if name == "pageInfo":
                return [("PageInfo", None)]
            if name == "totalCount":
                return []
            raise NotPlannable(f"{parent}.{name}")
        if parent.endswith("Edge"):
            if name == "node":
                return [(parent.removesuffix("Edge"), "Node")]
            if name == "cursor":
                return []
            raise NotPlannable(f"{parent}.{name}")
        if parent == "PageInfo":
            if name in PAGE_INFO_FIELDS:
                return []
            raise NotPlannable(f"PageInfo.{name}")
        return self.entity_child_types(ENTITIES[parent], name)

    @staticmethod
    def entity_child_types(entity: Entity, name: str) -> list[tuple[str, str | None]]:
        if name in ("id", "databaseId"):
            return []
        described = entity.field(name)
        if described is not None and described.readable:
            return []
        relation = entity.relation(name)
        if relation is None:
            raise NotPlannable(f"{entity.name}.{name}")
        if relation.cardinality is Cardinality.MANY:
            return [(f"{relation.target}Connection", None)]
        return [(relation.target, "Node")]


def has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(has_variable(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(has_variable(f.value) for f in value.fields)
    return False


def operation_tree(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[dict[str, Selection], int]:
    """The operation's root selections, and how many selections were visited to build them."""
    root_type = {"query": "Query", "mutation": "Mutation"}.get(operation.operation.value)
    if root_type is None:
        raise NotPlannable(operation.operation.value)
    builder = TreeBuilder(Collector(fragments))
    root = FieldNode(name=NameNode(value="data"), selection_set=operation.selection_set)
    return builder.selections([root], root_type), builder.collector.visited
