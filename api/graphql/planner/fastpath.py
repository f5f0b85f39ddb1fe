"""Plan operations as one SQL statement each, answered straight from Postgres's JSON.

The front door (`api.pipeline.door`) has already read, parsed, validated, authorised and
costed the request; the planner is one of its two executors. It turns a document's operation
into a tree of selections and the list of fields whose arguments feed the SQL
(`binding.Walk`), once per document, and keeps that on the parsed document; each request then
coerces its variables, runs that list over them, and runs the SQL compiled for that shape,
compiled once. Learning a document and compiling a shape draw on a per-process budget; past
it, the resolvers answer.
Whatever the planner does not fully understand, and every error (bad variables, a refused
argument), goes to the resolvers, which answer as they always do: the planner fails closed.
"""

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, cast

import orjson
from graphql import (
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
)
from graphql.execution.values import VariableValues, get_variable_values

from api.db.reads import PlannerPool
from api.db.statements import count_statement
from api.graphql.errors import (
    database_busy_error,
    is_database_unavailable,
    is_lock_wait,
    is_not_migrated,
    is_query_timeout,
    query_timeout_error,
    unavailable_error,
)
from api.graphql.planner.binding import Binder, Binding, Rejected, Step, Walk
from api.graphql.planner.compiler import CompiledPlan, compile_query
from api.graphql.planner.document import NotPlannable, Selection, operation_tree
from api.graphql.planner.seed import compile_write, write_steps
from api.graphql.planner.variables import SimpleVariable, coerce_simple, simple_variables
from api.pipeline.admission import ServerBusy
from api.pipeline.budget import TokenBucket
from api.pipeline.caches import ByteBoundedCache, SeenTwice
from api.pipeline.documents import ParsedDocument

log = logging.getLogger(__name__)
MAX_SHAPES = 64  # per operation: the orderings and directions of its connections actually seen
MAX_REPEATED_BODY = 4096
REPEAT_WINDOW = 4096  # requests: a body seen again within 4,096 to 8,192 of them is kept
# What a compiled shape holds beyond its SQL text (the plan object, its parameter slots).
BYTES_PER_PLAN = 4096


class OverBudget(NotPlannable):
    """The compile budget is spent: the resolvers answer this request."""


@dataclass
class PlannedOperation:
    """One operation of a validated document: its tree, and its SQL per shape."""

    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    tree: dict[str, Selection]
    steps: tuple[Step, ...]  # the fields whose arguments each request binds, in order
    schema: GraphQLSchema
    plans: dict[tuple[Hashable, ...], CompiledPlan] = field(default_factory=dict)

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
    def writes(self) -> bool:
        return self.operation.operation is OperationType.MUTATION

    @cached_property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None

    def plan(
        self, shape: tuple[Hashable, ...], budget: TokenBucket
    ) -> tuple[CompiledPlan, int | None]:
        """The shape's SQL, and the bytes it added when it was compiled just now (None when it
        was not compiled; 0 when it was, but not kept).

        A shape not seen before is compiled only while the budget allows, and at most
        MAX_SHAPES are kept per operation: one compiled past that answers once and is not
        kept, so cycling through shapes costs the budget, never memory.
        """
        plan = self.plans.get(shape)
        if plan is not None:
            return plan, None
        if not budget.take():
            raise OverBudget("compile budget spent")
        compile_shape = compile_write if self.writes else compile_query
        plan = compile_shape(self.tree, list(shape))
        if len(self.plans) >= MAX_SHAPES:
            return plan, 0
        self.plans[shape] = plan
        return plan, BYTES_PER_PLAN + 2 * len(plan.sql)


@dataclass(frozen=True)
class KnownDocument:
    """The plannable operations of one valid document, by operation node."""

    operations: dict[int, PlannedOperation]


class Prepared(NamedTuple):
    """What one request runs: a named tuple, as one is made per request."""

    operation: OperationDefinitionNode
    sql: str
    parameters: list[Any]
    writes: bool
    root: dict[str, Selection]
    custom: bool = False  # planned with its values on every run (`CompiledPlan.custom`)

    @property
    def operation_name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None


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


def busy_response(prepared: Prepared) -> bytes:
    """What the ordinary path answers when its root fields gave up waiting on a lock."""
    errors = [
        database_busy_error(nodes=[selection.node], path=[key]).formatted
        for key, selection in prepared.root.items()
    ]
    return orjson.dumps({"data": None, "errors": errors})


@dataclass
class QueryPlans:
    """What the planner learnt about documents (kept on them), and requests seen byte for
    byte before, with their bound SQL (least recent out, bounded by bytes).

    `charge` accounts, to the document cache, for the memory a document's plans add.
    """

    schema: GraphQLSchema
    default_page_size: int
    max_page_size: int
    compile_budget: TokenBucket
    repeated_cache_bytes: int
    charge: Callable[[ParsedDocument, int], None]
    compiled: int = field(default=0, init=False)  # shapes compiled since start, kept or not

    def __post_init__(self) -> None:
        self._repeated: ByteBoundedCache[bytes, Prepared] = ByteBoundedCache(
            self.repeated_cache_bytes
        )
        # Kept once seen twice within the last few thousand requests: bodies sent once (new
        # variables every time) would only churn the cache, at a cost to every request.
        self._seen = SeenTwice(REPEAT_WINDOW)

    def repeated(self, body: bytes) -> Prepared | None:
        """A request seen byte for byte before: its operation, SQL and values, unbound again."""
        return self._repeated.get(body)

    def prepare(
        self,
        parsed: ParsedDocument,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
        body: bytes | None = None,
    ) -> Prepared | None:
        """The SQL and parameters for this request when the planner can answer it, else None.

        `body`, when given, is the request's exact bytes: a later identical request skips the
        binding too.
        """
        try:
            prepared = self._prepare(parsed, operation, variables)
        except (NotPlannable, Rejected):
            return None
        except Exception:  # never answer what we did not fully understand
            log.warning("the planner could not prepare a request", exc_info=True)
            return None
        if (
            prepared is not None
            and body is not None
            and len(body) <= MAX_REPEATED_BODY
            and self._seen(body)
        ):
            size = 2 * len(body) + 64 * len(prepared.parameters) + 512
            self._repeated.put(body, prepared, size)
        return prepared

    def _prepare(
        self, parsed: ParsedDocument, operation: OperationDefinitionNode, inputs: dict[str, Any]
    ) -> Prepared | None:
        known = self.learn(parsed)
        planned = known.operations.get(id(operation)) if known else None
        if planned is None:
            return None
        coerced = planned.coerce(inputs)
        if coerced is None:
            return None
        binding = self.bind(planned, coerced)
        plan, added = planned.plan(tuple(binding.shape), self.compile_budget)
        if added is not None:
            self.compiled += 1
        if added:
            self.charge(parsed, added)
        parameters = plan.parameters(binding.values)
        return Prepared(operation, plan.sql, parameters, planned.writes, planned.tree, plan.custom)

    def learn(self, parsed: ParsedDocument) -> KnownDocument | None:
        """What the planner can do with `parsed`, worked out once (on the compile budget)."""
        if parsed.planner_tried:
            return cast(KnownDocument | None, parsed.planned)
        if not self.compile_budget.take():
            raise OverBudget("compile budget spent")
        parsed.planner_tried = True
        known = known_document(parsed, self.schema)
        parsed.planned = known
        if known is not None:
            self.charge(parsed, parsed.size // 2)
        return known

    def bind(self, planned: PlannedOperation, variables: VariableValues) -> Binding:
        binder = Binder(variables, self.default_page_size, self.max_page_size)
        return binder.run(planned.steps)


def known_document(parsed: ParsedDocument, schema: GraphQLSchema) -> KnownDocument | None:
    planned: dict[int, PlannedOperation] = {}
    for operation in parsed.operations:
        try:
            tree, _ = operation_tree(operation, parsed.fragments)
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
        planned[id(operation)] = PlannedOperation(operation, parsed.fragments, tree, steps, schema)
    return KnownDocument(planned) if planned else None


class Answer(NamedTuple):
    """A planned request's whole response body, and whether it went as planned."""

    body: bytes
    ok: bool


async def serve_planned(pool: PlannerPool, prepared: Prepared) -> Answer | None:
    """The response for a planned operation, or None to let the resolvers answer it."""
    try:
        response: bytes | None = await pool.fetch_value(
            prepared.sql, prepared.parameters, read=not prepared.writes, custom=prepared.custom
        )
    except ServerBusy:  # shed before it ran: the door answers it
        raise
    except Exception as error:
        if is_lock_wait(error) and not prepared.writes:  # a lock held it: busy, retry later
            count_statement()
            log.warning("planned read gave up waiting on a lock: %s", prepared.operation_name)
            return Answer(busy_response(prepared), ok=False)
        if is_query_timeout(error):  # too expensive: answered once, neither retried nor re-run
            count_statement()
            log.warning("planned query ran past the read budget: %s", prepared.operation_name)
            return Answer(query_timeout_response(prepared), ok=False)
        unavailable = is_database_unavailable(error)
        if unavailable and prepared.writes:  # it may have been written: never write it twice
            return Answer(unavailable_response(prepared), ok=False)
        # A read, or a write that failed inside the database (nothing written): the ordinary
        # path answers, with its own retries and its own error, so both paths say the same.
        if unavailable or is_not_migrated(error):  # expected, and said by the ordinary path
            log.info("planned query failed (%r); answering it the ordinary way", error)
        else:
            log.warning("planned query failed; answering it the ordinary way", exc_info=True)
        return None
    count_statement()
    if response is None:  # a write that found nothing to write to: its user error comes next
        return None
    return Answer(response, ok=True)
