"""Serve planned read queries straight from Postgres's JSON, before Strawberry runs.

A document is served here only after the ordinary path has parsed and validated it once
(with every limit) and found it plannable; each request then only coerces its variables,
compiles one SQL statement and sends Postgres's text unchanged. Whatever goes wrong (bad
variables, a rejected argument, a lost connection) goes to the ordinary path, which answers
with the same errors it always does.
"""

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import SchemaExtension

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
from api.graphql.planner.compiler import NotPlannable, Rejected, compile_query
from api.graphql.planner.writes import compile_create_book
from api.observability.requests import record_operation

log = logging.getLogger(__name__)
MAX_PLANS = 512
MAX_COMPILED = 2048
SORTED = orjson.OPT_SORT_KEYS
Compiled = tuple[str | None, str, list[Any], bool]


@dataclass(frozen=True)
class Plannable:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]


@dataclass(frozen=True)
class KnownDocument:
    """The plannable operations of one validated document, by name (None: the only one)."""

    operations: dict[str | None, Plannable]

    def operation(self, name: str | None) -> Plannable | None:
        return self.operations.get(name)


class QueryPlans:
    """Validated documents the planner can serve, by query text; bounded, least recent out."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        default_page_size: int,
        max_page_size: int,
        max_cost: int,
        api_tokens: list[str],
    ) -> None:
        self.schema = schema
        self.api_tokens = api_tokens
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.max_cost = max_cost
        self._known: OrderedDict[str, KnownDocument] = OrderedDict()
        # The SQL for a document and its variables is a pure function of them: memoised.
        self._compiled: OrderedDict[tuple[str, str | None, bytes], Compiled] = OrderedDict()

    def learn(self, query: str, document: DocumentNode) -> None:
        definitions = document.definitions
        fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
        operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
        plannable: dict[str | None, Plannable] = {}
        for operation in operations:
            candidate = Plannable(operation, fragments)
            try:  # without variables' values an argument may fail before the shape is checked
                self.compile(candidate, None)
            except NotPlannable:
                continue
            except Exception:  # values are checked again on every request
                log.debug("planning needs the variables of %s", operation.name)
            if operation.name is not None:
                plannable[operation.name.value] = candidate
            if len(operations) == 1:
                plannable[None] = candidate
        if plannable:
            self._known[query] = KnownDocument(plannable)
            while len(self._known) > MAX_PLANS:
                self._known.popitem(last=False)

    def knows(self, query: str) -> bool:
        return query in self._known

    def get(self, query: str, operation_name: str | None) -> Plannable | None:
        known = self._known.get(query)
        if known is None:
            return None
        self._known.move_to_end(query)
        return known.operation(operation_name)

    def compile(
        self, plannable: Plannable, variables: VariableValues | None
    ) -> tuple[str, list[Any]]:
        if plannable.operation.operation is OperationType.MUTATION:
            return compile_create_book(
                plannable.operation,
                schema=self.schema,
                fragments=plannable.fragments,
                variables=variables,
            )
        return compile_query(
            plannable.operation,
            schema=self.schema,
            fragments=plannable.fragments,
            variables=variables,
            default_page_size=self.default_page_size,
            max_page_size=self.max_page_size,
        )

    def prepare(self, body: bytes, authorization: str | None = None) -> Compiled | None:
        """(operation name, SQL, parameters, writes?) when `body` can be served here, else None.

        A write without the credentials it needs is left to the ordinary path, which refuses it.
        """
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return None
        operation_name = request.get("operationName")
        variables = request.get("variables") or {}
        if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
            return None
        plannable = self.get(request["query"], operation_name)
        if plannable is None:
            return None
        if plannable.operation.operation is OperationType.MUTATION and self.api_tokens:
            offered = bearer_token(authorization)
            if offered is None or not token_matches(offered, self.api_tokens):
                return None
        key = (request["query"], operation_name, orjson.dumps(variables, option=SORTED))
        compiled = self._compiled.get(key)
        if compiled is not None:
            self._compiled.move_to_end(key)
        else:
            compiled = self._compile_request(plannable, variables)
            if compiled is None:
                return None
            self._compiled[key] = compiled
            while len(self._compiled) > MAX_COMPILED:
                self._compiled.popitem(last=False)
        return compiled

    def _compile_request(self, plannable: Plannable, variables: dict[str, Any]) -> Compiled | None:
        coerced = get_variable_values(
            self.schema, plannable.operation.variable_definitions or (), variables
        )
        if isinstance(coerced, list):
            return None
        cost = query_cost(
            plannable.operation,
            plannable.fragments,
            coerced,
            default_page_size=self.default_page_size,
            max_page_size=self.max_page_size,
        )
        if cost > self.max_cost:  # the ordinary path refuses it, with its message
            return None
        try:
            sql, params = self.compile(plannable, coerced)
        except (NotPlannable, Rejected):
            return None
        name = plannable.operation.name.value if plannable.operation.name else None
        return name, sql, params, plannable.operation.operation is OperationType.MUTATION


class LearnPlans(SchemaExtension):
    """After the ordinary path validated a query, remember it if the planner can serve it."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        plans = getattr(context.context, "query_plans", None)
        if (
            isinstance(plans, QueryPlans)
            and context.query is not None
            and context.graphql_document is not None
            and not plans.knows(context.query)
        ):
            plans.learn(context.query, context.graphql_document)
        yield


async def serve_planned(
    plans: QueryPlans, pool: ReadPool, request: bytes, authorization: str | None = None
) -> bytes | None:
    """The whole response body for a planned operation, or None to use the ordinary path."""
    prepared = plans.prepare(request, authorization)
    if prepared is None:
        return None
    operation_name, sql, params, writes = prepared
    # A read can be tried again on a fresh connection; a write whose fate is unknown cannot.
    attempts = 1 if writes else 2
    for attempt in range(1, attempts + 1):
        try:
            response: bytes | None = await pool.fetch_value(sql, params, read=not writes)
            break
        except Exception as error:
            if is_query_timeout(error):  # too expensive: running it again would cost as much
                count_statement()
                log.warning("planned query ran past the read budget: %s", operation_name)
                record_operation(operation_name or "anonymous", "error")
                return orjson.dumps({"data": None, "errors": [query_timeout_error().formatted]})
            if not is_database_unavailable(error):  # the statement failed: nothing written
                log.warning("planned query failed; answering it the ordinary way", exc_info=True)
                return None
            if attempt == attempts:  # the ordinary path would only wait as long again
                log.warning("database unavailable for a planned query: %r", error)
                record_operation(operation_name or "anonymous", "error")
                return orjson.dumps({"data": None, "errors": [unavailable_error().formatted]})
    count_statement()
    if response is None:  # a write that found nothing to write to: its user error comes next
        return None
    record_operation(operation_name or "anonymous", "ok")
    return response
