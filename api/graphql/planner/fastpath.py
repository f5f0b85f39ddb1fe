"""Serve planned operations straight from Postgres's JSON, before Strawberry runs.

A document is parsed and validated here once, with the same rules and limits as the ordinary
path, and turned into a tree of selections and the list of fields whose arguments feed the
SQL (`binding.Walk`); each request then coerces its variables, runs that list over them, and
runs the SQL compiled for that shape, compiled once.
Whatever the planner does not fully understand, and every error (bad variables, a refused
argument, a document that fails validation), goes to the ordinary path, which answers as it
always does: the planner fails closed.
"""

import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import orjson
from graphql import (
    ArgumentNode,
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.execution.values import VariableValues, get_variable_values

from api.db.reads import ReadPool
from api.db.statements import count_statement
from api.graphql.errors import (
    is_database_unavailable,
    is_query_timeout,
    query_timeout_error,
    unavailable_error,
)
from api.graphql.limits import query_cost
from api.graphql.permissions import bearer_token, token_matches
from api.graphql.planner.binding import Binder, Binding, Rejected, Step, Walk
from api.graphql.planner.compiler import CompiledPlan, compile_query
from api.graphql.planner.document import NotPlannable, Selection, operation_tree
from api.graphql.planner.seed import compile_write, write_steps
from api.graphql.planner.variables import SimpleVariable, coerce_simple, simple_variables
from api.observability.requests import record_operation

log = logging.getLogger(__name__)
MAX_DOCUMENTS = 512
MAX_SHAPES = 64  # per operation: orderings x directions x cursors x filters actually seen
MAX_REPEATED = 2048
MAX_REPEATED_BODY = 4096


@dataclass
class PlannedOperation:
    """One operation of a validated document: its tree, and its SQL per shape."""

    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    tree: dict[str, Selection]
    steps: tuple[Step, ...]  # the fields whose arguments each request binds, in order
    schema: GraphQLSchema
    plans: OrderedDict[tuple[Hashable, ...], CompiledPlan] = field(default_factory=OrderedDict)
    costs: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def cost(self, variables: VariableValues, default_page_size: int, max_page_size: int) -> int:
        """The query cost limit's measure; it only depends on the page sizes' variables."""
        key = tuple(map(variables.coerced.get, self.size_variables))
        cost = self.costs.get(key)
        if cost is None:
            cost = query_cost(
                self.operation,
                self.fragments,
                variables,
                default_page_size=default_page_size,
                max_page_size=max_page_size,
            )
            if len(self.costs) < MAX_SHAPES:
                self.costs[key] = cost
        return cost

    def coerce(self, inputs: dict[str, Any]) -> VariableValues | None:
        """The request's variables, coerced as graphql-core does; None when they are invalid."""
        if self.simple_variables is not None:
            coerced = coerce_simple(self.simple_variables, inputs)
            if coerced is not None:
                return coerced
        definitions = self.operation.variable_definitions or ()
        values = get_variable_values(self.schema, definitions, inputs)
        return values if isinstance(values, VariableValues) else None

    @cached_property
    def simple_variables(self) -> tuple[SimpleVariable, ...] | None:
        return simple_variables(self.schema, self.operation.variable_definitions or ())

    @cached_property
    def size_variables(self) -> tuple[str, ...]:
        """Variables given to `first` or `last` anywhere in the operation or its fragments."""
        names: set[str] = set()

        class PageSizes(Visitor):
            def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
                if node.name.value in ("first", "last") and isinstance(node.value, VariableNode):
                    names.add(node.value.name.value)

        for definition in (self.operation, *self.fragments.values()):
            visit(definition, PageSizes())
        return tuple(sorted(names))

    @cached_property
    def writes(self) -> bool:
        return self.operation.operation is OperationType.MUTATION

    @cached_property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None

    def plan(self, shape: tuple[Hashable, ...]) -> CompiledPlan:
        plan = self.plans.get(shape)
        if plan is None:
            compile_shape = compile_write if self.writes else compile_query
            plan = compile_shape(self.tree, list(shape))
            self.plans[shape] = plan
            while len(self.plans) > MAX_SHAPES:
                self.plans.popitem(last=False)
        return plan


@dataclass(frozen=True)
class KnownDocument:
    """The plannable operations of one valid document, by name (None: the only one)."""

    operations: dict[str | None, PlannedOperation]


UNKNOWN = KnownDocument({})  # a document not seen yet (None: seen, and not plannable)


class Prepared(NamedTuple):
    """What one request runs: a named tuple, as one is made per request."""

    operation_name: str | None
    sql: str
    parameters: list[Any]
    writes: bool
    root: dict[str, Selection]


def unavailable_response(prepared: Prepared) -> bytes:
    """What the ordinary path answers when its root fields find the database gone."""
    errors = [
        unavailable_error(nodes=[selection.node], path=[key]).formatted
        for key, selection in prepared.root.items()
    ]
    return orjson.dumps({"data": None, "errors": errors})


def query_timeout_response(prepared: Prepared) -> bytes:
    """What the ordinary path answers when its root fields run past the read budget."""
    errors = [
        query_timeout_error(nodes=[selection.node], path=[key]).formatted
        for key, selection in prepared.root.items()
    ]
    return orjson.dumps({"data": None, "errors": errors})


class QueryPlans:
    """Documents the planner has seen, by query text (None: not plannable); least recent out."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        validation_rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        default_page_size: int,
        max_page_size: int,
        max_cost: int,
        api_tokens: list[str],
    ) -> None:
        self.schema = schema
        self.rules = [*specified_rules, *validation_rules]
        self.max_tokens = max_tokens
        self.api_tokens = api_tokens
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.max_cost = max_cost
        self._documents: OrderedDict[str, KnownDocument | None] = OrderedDict()
        # A client repeating a request exactly (same ids, same page) skips the binding too.
        self._repeated: OrderedDict[bytes, Prepared] = OrderedDict()

    def document(self, query: str) -> KnownDocument | None:
        known = self._documents.get(query, UNKNOWN)
        if known is not UNKNOWN:
            self._documents.move_to_end(query)
            return known
        known = self._learn(query)
        self._documents[query] = known
        while len(self._documents) > MAX_DOCUMENTS:
            self._documents.popitem(last=False)
        return known

    def _learn(self, query: str) -> KnownDocument | None:
        """Parse and validate as the ordinary path does; None when it would answer an error."""
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        if validate(self.schema, document, self.rules):
            return None
        return known_document(document, self.schema)

    def prepare(self, body: bytes, authorization: str | None = None) -> Prepared | None:
        """The SQL and parameters for `body` when the planner can answer it, else None.

        A write without the credentials it needs is left to the ordinary path, which refuses it.
        """
        repeated = self._repeated.get(body)
        if repeated is not None:
            self._repeated.move_to_end(body)
            return repeated if self._allowed(repeated.writes, authorization) else None
        try:
            prepared = self._prepare(body, authorization)
        except (NotPlannable, Rejected):
            return None
        except Exception:  # never answer what we did not fully understand
            log.warning("the planner could not prepare a request", exc_info=True)
            return None
        if prepared is not None and len(body) <= MAX_REPEATED_BODY:
            self._repeated[body] = prepared
            while len(self._repeated) > MAX_REPEATED:
                self._repeated.popitem(last=False)
        return prepared

    def _allowed(self, writes: bool, authorization: str | None) -> bool:
        if not writes or not self.api_tokens:
            return True
        offered = bearer_token(authorization)
        return offered is not None and token_matches(offered, self.api_tokens)

    def _prepare(self, body: bytes, authorization: str | None) -> Prepared | None:
        request = orjson.loads(body)
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return None
        operation_name = request.get("operationName")
        variables = request.get("variables")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
            return None
        known = self.document(request["query"])
        planned = known.operations.get(operation_name) if known else None
        if planned is None:
            return None
        if not self._allowed(planned.writes, authorization):
            return None
        coerced = planned.coerce(variables)
        if coerced is None:
            return None
        if (
            planned.cost(coerced, self.default_page_size, self.max_page_size) > self.max_cost
        ):  # the ordinary path refuses it, with its message
            return None
        binding = self.bind(planned, coerced)
        plan = planned.plan(tuple(binding.shape))
        return Prepared(
            planned.name, plan.sql, plan.parameters(binding.values), planned.writes, planned.tree
        )

    def bind(self, planned: PlannedOperation, variables: VariableValues) -> Binding:
        binder = Binder(variables, self.default_page_size, self.max_page_size)
        return binder.run(planned.steps)


def known_document(document: DocumentNode, schema: GraphQLSchema) -> KnownDocument | None:
    definitions = document.definitions
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    planned: dict[str | None, PlannedOperation] = {}
    for operation in operations:
        try:
            tree, _ = operation_tree(operation, fragments)
            walk = Walk(schema)
            if operation.operation is OperationType.MUTATION:
                if len(tree) != 1:
                    raise NotPlannable("only a lone create is planned")
                ((_, selection),) = tree.items()
                steps = write_steps(walk, selection)
            else:
                steps = walk.query(tree)
        except NotPlannable:
            continue
        candidate = PlannedOperation(operation, fragments, tree, steps, schema)
        if operation.name is not None:
            planned[operation.name.value] = candidate
        if len(operations) == 1:
            planned[None] = candidate
    return KnownDocument(planned) if planned else None


async def serve_planned(
    plans: QueryPlans, pool: ReadPool, request: bytes, authorization: str | None = None
) -> bytes | None:
    """The whole response body for a planned operation, or None to use the ordinary path."""
    prepared = plans.prepare(request, authorization)
    if prepared is None:
        return None
    try:
        response: bytes | None = await pool.fetch_value(
            prepared.sql, prepared.parameters, read=not prepared.writes
        )
    except Exception as error:
        if is_query_timeout(error):  # too expensive: answered once, neither retried nor re-run
            count_statement()
            log.warning("planned query ran past the read budget: %s", prepared.operation_name)
            record_operation(prepared.operation_name or "anonymous", "error")
            return query_timeout_response(prepared)
        unavailable = is_database_unavailable(error)
        if unavailable and prepared.writes:  # it may have been written: never write it twice
            record_operation(prepared.operation_name or "anonymous", "error")
            return unavailable_response(prepared)
        # A read, or a write that failed inside the database (nothing written): the ordinary
        # path answers, with its own retries and its own error, so both paths say the same.
        level = logging.INFO if unavailable else logging.WARNING
        log.log(level, "planned query failed; answering it the ordinary way", exc_info=True)
        return None
    count_statement()
    if response is None:  # a write that found nothing to write to: its user error comes next
        return None
    record_operation(prepared.operation_name or "anonymous", "ok")
    return response
