"""Limits on what one document may ask for, each fragment measured once.

Strawberry's depth and alias limiters expand every fragment spread anew, so twenty fragments
that each spread the previous one twice take seconds to validate, blocking the worker. Here
each fragment's measure is computed once and reused, so validation stays linear in the
document. The cost limit needs the variables' values (page sizes): the front door
(`api.pipeline.policy`) applies it once per request, before either executor runs.
"""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.execution.values import VariableValues
from graphql.language import DocumentNode, IntValueNode, VariableNode

from api.graphql.surface import SURFACE

CONNECTION_FIELDS = SURFACE.connection_names
"""Fields that return a page of rows: every root connection and every to-many relation."""


@dataclass
class Visits:
    """Selections the limit checks looked at: their cost, measured as work rather than time."""

    count: int = 0


_visits: ContextVar[Visits | None] = ContextVar("limit_visits", default=None)


class counting_visits:
    """Count, until exit, the selections every limit check in this context visits."""

    def __enter__(self) -> Visits:
        self.visits = Visits()
        self.token = _visits.set(self.visits)
        return self.visits

    def __exit__(self, *_: object) -> None:
        _visits.reset(self.token)


def _fold(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    memo: dict[str, int],
    visiting: frozenset[str],
    measure_field: Callable[[FieldNode, int], int],
    combine: Callable[[list[int]], int],
) -> int:
    """Combine `measure_field` over a selection set, each named fragment measured once."""
    if selection_set is None:
        return 0
    visits = _visits.get()
    if visits is not None:
        visits.count += len(selection_set.selections)
    values = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            inner = _fold(
                selection.selection_set, fragments, memo, visiting, measure_field, combine
            )
            values.append(measure_field(selection, inner))
        elif isinstance(selection, InlineFragmentNode):
            values.append(
                _fold(selection.selection_set, fragments, memo, visiting, measure_field, combine)
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in visiting:  # unknown or cyclic: other rules report it
                continue
            if name not in memo:
                memo[name] = _fold(
                    fragment.selection_set,
                    fragments,
                    memo,
                    visiting | {name},
                    measure_field,
                    combine,
                )
            values.append(memo[name])
    return combine(values)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _depth_of_field(field: FieldNode, inner: int) -> int:
    if field.name.value.startswith("__"):  # introspection is not the catalogue's depth
        return 0
    return 1 + inner if field.selection_set else 0


def _aliases_of_field(field: FieldNode, inner: int) -> int:
    return inner + (1 if field.alias else 0)


def _max(values: list[int]) -> int:
    return max(values, default=0)


def document_limits(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing operations deeper or with more aliases than allowed."""

    class DocumentLimits(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            fragments = _fragments(node)
            depth_memo: dict[str, int] = {}
            alias_memo: dict[str, int] = {}
            for operation in node.definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                name = operation.name.value if operation.name else "anonymous"
                depth = _fold(
                    operation.selection_set,
                    fragments,
                    depth_memo,
                    frozenset(),
                    _depth_of_field,
                    _max,
                )
                if depth - 1 > max_depth:
                    self.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                        )
                    )
                aliases = _fold(
                    operation.selection_set,
                    fragments,
                    alias_memo,
                    frozenset(),
                    _aliases_of_field,
                    sum,
                )
                if aliases > max_aliases:
                    self.report_error(
                        GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}", operation)
                    )

    return DocumentLimits


def query_cost(
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: VariableValues | dict[str, Any] | None,
    *,
    default_page_size: int,
    max_page_size: int,
) -> int:
    """Objects the operation can return at most: page sizes multiply down nested connections.

    A size that is not a valid Int or is over the page cap counts as the cap: its own, clearer
    error comes from variable coercion or from the page limit.
    """
    values = variables.coerced if isinstance(variables, VariableValues) else (variables or {})

    def page_size(field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                size: object = None
                if isinstance(value, VariableNode):
                    size = values.get(value.name.value)
                elif isinstance(value, IntValueNode):
                    size = int(value.value)
                if size is None:
                    return default_page_size
                if not isinstance(size, int) or isinstance(size, bool):
                    return max_page_size
                return min(max(size, 0), max_page_size)
        return default_page_size

    def cost_of_field(field: FieldNode, inner: int) -> int:
        if not field.selection_set:
            return 0
        times = page_size(field) if field.name.value in CONNECTION_FIELDS else 1
        return times * (1 + inner)

    return _fold(operation.selection_set, fragments, {}, frozenset(), cost_of_field, sum)


def over_cost_error(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"The query could return {cost} objects; the limit is {limit}. "
        "Ask for smaller pages or fewer nested connections.",
        extensions={"code": "QUERY_TOO_COSTLY"},
    )
