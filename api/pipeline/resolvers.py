"""The resolvers as the front door's second executor: Strawberry runs the door's document.

The document arrives parsed and validated (`PreparedDocument` hands it over), the caller
authorised and the cost checked; what is left is coercing the variables (graphql-core, once)
and resolving the fields through the per-request loaders. A request holds at most one
database connection (see `graphql.sessions`), admitted through the resolvers' gate.

A query reads from the endpoint the read router chooses (`db.replicas`: a replica the
consistency token allows, else the primary); a query a replica could not answer is answered
again by the primary, as reads change nothing. A mutation, and the payload it returns, use
the primary, and the WAL position after it becomes the request's consistency token.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from strawberry.http import process_result

from api.db.replicas import ReadRouter
from api.graphql.context import build_context
from api.graphql.errors import DATABASE_UNAVAILABLE_MESSAGE, ErrorCode, is_database_unavailable
from api.graphql.schema import CatalogSchema
from api.pipeline.admission import Gate
from api.pipeline.consistency import Consistency
from api.pipeline.documents import ParsedDocument
from api.pipeline.idempotency import IdempotencyKey, claim, store
from api.pipeline.refusals import Refused, RequestCode
from api.settings import Settings


@dataclass
class Result:
    body: bytes
    ok: bool
    # Variables that do not coerce: GraphQL's request error, with no data at all.
    request_error: bool = False
    replayed: bool = False  # the stored response of an earlier request with the same key
    unavailable: bool = False  # a field found the database unreachable


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
        key: IdempotencyKey | None = None,
        *,
        consistency: Consistency | None = None,
    ) -> Result:
        reads = operation.operation is OperationType.QUERY
        router: ReadRouter = state["reads"]
        # A read's whole database time is the read budget; a write may wait as long as a
        # statement may run (it has not started: shedding it loses nothing).
        budget = self.settings.db_read_timeout if reads else self.settings.db_statement_timeout
        run = Run(parsed, operation, variables, authorization)
        if not needs_database:
            return await self._run(run, state["session_factory"], budget)
        gate: Gate = state["resolver_gate"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with gate.slot(budget):
            if not reads:
                if key is not None:
                    result = await self._run_keyed(run, state["engine"], key)
                else:
                    read_budget = self.settings.db_read_timeout
                    result = await self._run(run, state["session_factory"], read_budget)
                if consistency is not None:
                    consistency.wrote(await router.write_position())
                return result
            endpoint = await router.for_read(consistency.after if consistency else None)
            left = None if budget is None else max(0.001, budget - (loop.time() - started))
            result = await self._run(run, endpoint.sessions, left)
            if result.unavailable and endpoint.replica:
                router.unavailable(endpoint)
                left = None if budget is None else max(0.001, budget - (loop.time() - started))
                result = await self._run(run, router.primary.sessions, left)
            return result

    async def _run_keyed(self, run: "Run", engine: AsyncEngine, key: IdempotencyKey) -> Result:
        """A keyed write: the key, the write and its response in one transaction.

        The resolvers' own transactions become savepoints of this one. A response with any
        error is not stored, and the transaction is rolled back with whatever it wrote, so a
        retry runs afresh. A commit whose answer was lost is WRITE_OUTCOME_UNKNOWN: the retry
        with the same key tells which way it went, without writing twice.
        """
        try:
            async with engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    replay = await claim(
                        connection,
                        key,
                        wait_seconds=self.settings.idempotency_wait,
                        retention_hours=self.settings.idempotency_retention_hours,
                    )
                    if replay is not None:
                        await transaction.rollback()
                        return Result(replay.body, ok=True, replayed=True)
                    factory = async_sessionmaker(
                        bind=connection,
                        expire_on_commit=False,
                        autoflush=False,
                        join_transaction_mode="create_savepoint",
                    )
                    result = await self._run(run, factory, self.settings.db_read_timeout)
                    if not result.ok:
                        await transaction.rollback()
                        return result
                    await store(connection, key, result.body)
                except BaseException:
                    if transaction.is_active:
                        await transaction.rollback()
                    raise
                try:
                    await transaction.commit()
                except Exception as error:
                    if is_database_unavailable(error):
                        raise outcome_unknown() from None
                    raise
                return result
        except Refused:
            raise
        except Exception as error:
            if is_database_unavailable(error):
                raise Refused(
                    RequestCode.DATABASE_UNAVAILABLE,
                    DATABASE_UNAVAILABLE_MESSAGE,
                    headers={"Retry-After": "1"},
                ) from None
            raise

    async def _run(
        self,
        run: "Run",
        session_factory: async_sessionmaker[AsyncSession],
        read_timeout: float | None,
    ) -> Result:
        context = build_context(
            self.settings,
            session_factory,
            authorization=run.authorization,
            document=run.parsed.node,
            read_timeout=read_timeout,
        )
        operation = run.operation
        result = await self.schema.execute(
            run.parsed.text,
            variable_values=run.variables,
            context_value=context,
            operation_name=operation.name.value if operation.name else None,
        )
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            body = orjson.dumps({"errors": request_errors(result.errors)})
            return Result(body, ok=False, request_error=True)
        unavailable = any(
            (error.extensions or {}).get("code") == ErrorCode.DATABASE_UNAVAILABLE.value
            for error in result.errors or ()
        )
        return Result(
            orjson.dumps(process_result(result)), ok=not result.errors, unavailable=unavailable
        )


@dataclass(frozen=True)
class Run:
    parsed: ParsedDocument
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    authorization: str | None


def outcome_unknown() -> Refused:
    return Refused(
        RequestCode.WRITE_OUTCOME_UNKNOWN,
        "The connection was lost as the write was committed: it may or may not have been "
        "saved. Retry with the same Idempotency-Key to learn which, without writing twice",
        headers={"Retry-After": "1"},
    )
