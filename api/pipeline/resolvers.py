"""The resolvers as the front door's second executor: Strawberry runs the door's document.

The document arrives parsed and validated (`PreparedDocument` hands it over), the caller
authorised and the cost checked; what is left is coercing the variables (graphql-core, once)
and resolving the fields through the per-request loaders. A request holds at most one
database connection (see `graphql.sessions`), admitted through the resolvers' gate.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from strawberry.http import process_result

from api.graphql.context import build_context
from api.graphql.schema import CatalogSchema
from api.pipeline.admission import Gate
from api.pipeline.documents import ParsedDocument
from api.pipeline.refusals import RequestCode
from api.settings import Settings


@dataclass
class Result:
    body: bytes
    ok: bool
    # Variables that do not coerce: GraphQL's request error, with no data at all.
    request_error: bool = False


def request_errors(errors: list[GraphQLError]) -> list[dict[str, Any]]:
    shown = []
    for error in errors:
        formatted: dict[str, Any] = dict(error.formatted)
        formatted["extensions"] = {
            **(error.extensions or {}),
            "code": RequestCode.BAD_USER_INPUT.value,
        }
        shown.append(formatted)
    return shown


class Resolvers:
    def __init__(self, schema: CatalogSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings

    async def execute(
        self,
        parsed: ParsedDocument,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
        authorization: str | None,
        state: dict[str, Any],
        needs_database: bool,
    ) -> Result:
        reads = operation.operation is OperationType.QUERY
        # A read's whole database time is the read budget; a write may wait as long as a
        # statement may run (it has not started: shedding it loses nothing).
        budget = self.settings.db_read_timeout if reads else self.settings.db_statement_timeout
        if not needs_database:
            return await self._run(parsed, operation, variables, authorization, state, budget)
        gate: Gate = state["resolver_gate"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with gate.slot(budget):
            if not reads:
                read_budget = self.settings.db_read_timeout
                return await self._run(
                    parsed, operation, variables, authorization, state, read_budget
                )
            left = None if budget is None else max(0.001, budget - (loop.time() - started))
            return await self._run(parsed, operation, variables, authorization, state, left)

    async def _run(
        self,
        parsed: ParsedDocument,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
        authorization: str | None,
        state: dict[str, Any],
        read_timeout: float | None,
    ) -> Result:
        context = build_context(
            self.settings,
            state["session_factory"],
            authorization=authorization,
            document=parsed.node,
            read_timeout=read_timeout,
        )
        result = await self.schema.execute(
            parsed.text,
            variable_values=variables,
            context_value=context,
            operation_name=operation.name.value if operation.name else None,
        )
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            body = orjson.dumps({"errors": request_errors(result.errors)})
            return Result(body, ok=False, request_error=True)
        return Result(orjson.dumps(process_result(result)), ok=not result.errors)
