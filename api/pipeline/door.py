"""POST /graphql: the one front door every GraphQL request comes through.

Each request is read once, decoded, parsed and validated once (`documents`), authorised,
checked against its list caps and costed once (`policy`), admitted to a connection pool
(`admission`), then executed by the planner when it can and otherwise by the resolvers, and
answered (`respond`) and counted once. The executors hold no rule of their own: whatever the
door refused, neither runs.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import FieldNode, OperationDefinitionNode, OperationType, VariableNode
from starlette.types import ASGIApp, Receive, Scope, Send

from api.graphql.planner.fastpath import Answer, Prepared, QueryPlans
from api.graphql.schema import CatalogSchema
from api.live.options import TransportOptions
from api.live.sse import serve_events, wants_events
from api.observability.requests import record_operation, record_rejection
from api.observability.tracing import trace_operation
from api.pipeline.admission import ServerBusy
from api.pipeline.body import BodyNotReceived, read_body
from api.pipeline.consistency import Consistency, serve_routed
from api.pipeline.documents import Documents, ParsedDocument
from api.pipeline.idempotency import HEADER as IDEMPOTENCY_HEADER
from api.pipeline.idempotency import REPLAYED_HEADER, IdempotencyKey, fingerprint, key_value
from api.pipeline.media import Media, negotiate
from api.pipeline.policy import Policy
from api.pipeline.refusals import (
    ALWAYS_STATUS,
    STATUS,
    Refused,
    RequestCode,
    not_an_operation,
    not_json,
)
from api.pipeline.resolvers import Resolvers
from api.pipeline.respond import Reply, send_reply
from api.pipeline.sources import Sources
from api.pipeline.web import cached, request_from_query_string

log = logging.getLogger(__name__)
MAX_SIZE_MEMO = 64  # costs remembered per operation, by its page-size variables' values


@dataclass
class Outcome:
    """One operation's answer: its JSON body (or the value to put in a batch's list)."""

    body: bytes
    operation: str | None
    outcome: str
    refused: Refused | None = None
    request_error: bool = False  # variables that did not coerce: no data, a 400
    headers: dict[str, str] = field(default_factory=dict)


def busy(error: ServerBusy) -> Refused:
    return Refused(
        RequestCode.SERVER_BUSY,
        "The server is busy; retry shortly",
        headers={"Retry-After": "1"},
    )


def anonymous_too_large(most: int) -> Refused:
    return Refused(
        RequestCode.PAYLOAD_TOO_LARGE,
        f"A request without credentials may send at most {most} bytes; writes need a token",
        headers={"Connection": "close"},
        reason="anonymous_body_too_large",
        slow_down=True,
    )


def needs_database(operation: OperationDefinitionNode) -> bool:
    """Whether any root field reads the catalogue (introspection alone does not)."""
    return any(
        not (isinstance(s, FieldNode) and s.name.value.startswith("__"))
        for s in operation.selection_set.selections
    )


def size_variables(operation: OperationDefinitionNode) -> tuple[str, ...]:
    """The variables a page size (first/last) reads anywhere in the operation's own fields."""
    names: list[str] = []
    stack: list[Any] = [operation.selection_set]
    while stack:
        selection_set = stack.pop()
        for selection in selection_set.selections if selection_set else ():
            for argument in getattr(selection, "arguments", None) or ():
                if argument.name.value in ("first", "last") and isinstance(
                    argument.value, VariableNode
                ):
                    names.append(argument.value.name.value)
            stack.append(getattr(selection, "selection_set", None))
    return tuple(sorted(set(names)))


@dataclass
class FrontDoor:
    """The one way in; `page_view` serves GraphiQL's page for a browser's GET."""

    schema: CatalogSchema
    documents: Documents
    policy: Policy
    plans: QueryPlans | None
    resolvers: Resolvers
    page_view: ASGIApp
    batch_max_operations: int
    body_timeout: float | None
    sources: Sources
    cache_max_age: int = 0
    anonymous_max_body_bytes: int = 128 * 1024
    events: TransportOptions = field(default_factory=TransportOptions)  # SSE heartbeats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method not in ("GET", "POST"):
            await self.page_view(scope, receive, send)
            return
        get_request: dict[str, Any] | None = None
        if method == "GET":
            try:
                get_request = request_from_query_string(scope.get("query_string", b""))
            except Refused as refused:
                await send_reply(send, self._refused(refused, Media.JSON))
                return
            if get_request is None:  # no GraphQL parameters: a browser asking for GraphiQL
                await self.page_view(scope, receive, send)
                return
        headers = dict(scope["headers"])
        if wants_events(_header(headers, b"accept")):  # graphql-sse: a subscription's stream
            await self._events(scope, receive, send, headers, get_request)
            return
        media = negotiate(_header(headers, b"accept"))
        if media is None:
            record_rejection("not_acceptable")
            await send_reply(send, Reply.not_acceptable())
            return
        state = scope.get("state") or {}
        authorization = _header(headers, b"authorization")
        consistency = Consistency.of_request(headers)
        if get_request is not None:
            reply = await self.answer_get(get_request, authorization, media, state, consistency)
            await send_reply(
                send,
                cached(
                    reply, authorization, _header(headers, b"if-none-match"), self.cache_max_age
                ),
            )
            return
        body = await self._body_of(scope, headers, receive, send, media)
        if body is None:
            return
        try:
            key = key_value(_header(headers, IDEMPOTENCY_HEADER))
        except Refused as refused:
            await send_reply(send, self._refused(refused, media))
            return
        reply = await self.answer(body, authorization, media, state, key, consistency)
        reply.headers.update(consistency.response_headers())  # a write's position, if any
        await send_reply(send, reply)

    async def _events(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        request: dict[str, Any] | None,
    ) -> None:
        """A subscription as an event stream (`api.live.sse`), its body read as any other."""
        media = Media.GRAPHQL_RESPONSE_JSON
        body = (
            b""
            if request is not None
            else await self._body_of(scope, headers, receive, send, media)
        )
        if body is not None:  # else already answered
            await serve_events(self.events, scope, receive, send, request, body, self._refused)

    async def _body_of(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        receive: Receive,
        send: Send,
        media: Media,
    ) -> bytes | None:
        """The request's whole body, within its limits; None once it has been answered."""
        # Without credentials, where writes need them, a body is a read: a document and its
        # variables. A larger one is refused before it is read, let alone decoded.
        most = None
        if _header(headers, b"authorization") is None and self.policy.authenticator.enforcing:
            most = self.anonymous_max_body_bytes
            length = _header(headers, b"content-length")
            if length is not None and length.isdigit() and int(length) > most:
                await send_reply(send, self._refused(anonymous_too_large(most), media))
                return None
        try:
            return await read_body(scope, receive, self.body_timeout, most)
        except BodyNotReceived as gone:  # nothing runs
            if gone.reason == "anonymous_body_too_large" and most is not None:
                await send_reply(send, self._refused(anonymous_too_large(most), media))
            elif gone.reason == "body_timeout":  # too slow: told so, and the connection closed
                late = Refused(
                    RequestCode.REQUEST_TIMEOUT,
                    f"The request body did not arrive within {self.body_timeout} s",
                    headers={"Connection": "close"},
                    reason="body_timeout",
                )
                await send_reply(send, self._refused(late, media))
            else:  # the client went away: nobody to answer
                record_rejection(gone.reason)
            return None

    async def answer_get(
        self,
        request: dict[str, Any],
        authorization: str | None,
        media: Media,
        state: dict[str, Any],
        consistency: Consistency | None = None,
    ) -> Reply:
        """A query over GET: the same pipeline, and a mutation refused before it runs."""
        outcome = await self.run(
            request, authorization, state, method="GET", consistency=consistency
        )
        return self._reply(outcome, media)

    async def answer(
        self,
        body: bytes,
        authorization: str | None,
        media: Media,
        state: dict[str, Any],
        idempotency_key: str | None = None,
        consistency: Consistency | None = None,
    ) -> Reply:
        """`consistency`: the request's token in, its writes' position out (for the caller
        to answer with: `Consistency.response_headers`)."""
        consistency = consistency or Consistency()
        if self.plans is not None and idempotency_key is None:
            repeated = self.plans.repeated(body)
            if repeated is not None:
                trace_operation(repeated.operation)
                try:
                    await self.policy.authorise(repeated.operation, authorization)
                    answer = await serve_routed(state["reads"], repeated, consistency)
                except Refused as refused:
                    return self._refused(refused, media)
                except ServerBusy as error:
                    return self._refused(busy(error), media)
                if answer is not None:
                    return self._planned(answer, repeated, media)
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._refused(not_json(), media)
        if isinstance(request, list):
            if idempotency_key is not None:
                return self._refused(
                    Refused(
                        RequestCode.BAD_REQUEST,
                        "Idempotency-Key applies to one operation; send the write on its own",
                    ),
                    media,
                )
            return await self._batch(request, authorization, media, state, consistency)
        if not isinstance(request, dict):
            return self._refused(not_an_operation(), media)
        outcome = await self.run(
            request,
            authorization,
            state,
            body,
            idempotency_key=idempotency_key,
            consistency=consistency,
        )
        return self._reply(outcome, media)

    def _reply(self, outcome: Outcome, media: Media) -> Reply:
        if outcome.refused is not None:  # counted as a rejection or a refused operation
            return self._refused(outcome.refused, media)
        record_operation(outcome.operation or "anonymous", outcome.outcome)
        if outcome.request_error and media is Media.GRAPHQL_RESPONSE_JSON:
            return Reply(400, outcome.body, media.content_type, ok=False)
        reply = Reply.graphql(outcome.body, media, ok=outcome.outcome == "ok")
        reply.headers.update(outcome.headers)
        return reply

    async def prepare(self, body: bytes, authorization: str | None = None) -> Prepared | None:
        """What the planner would run for `body` (tests and benchmarks read its SQL)."""
        if self.plans is None:
            return None
        parsed, operation, variables, _ = await self.admit(orjson.loads(body), authorization)
        return self.plans.prepare(parsed, operation, variables)

    async def run(
        self,
        request: dict[str, Any],
        authorization: str | None,
        state: dict[str, Any],
        body: bytes | None = None,
        *,
        costed: bool = False,
        method: str = "POST",
        idempotency_key: str | None = None,
        consistency: Consistency | None = None,
    ) -> Outcome:
        """One operation, from its request object to its response body."""
        consistency = consistency or Consistency()
        try:
            parsed, operation, variables, caller = await self.admit(request, authorization, method)
            trace_operation(operation)
            if not costed:
                self.policy.check_cost(self.cost(parsed, operation, variables))
            label = operation.name.value if operation.name else None
            key = None
            if idempotency_key is not None and operation.operation is OperationType.MUTATION:
                # Keyed writes are answered by the resolvers, which hold the key, the write
                # and its response in one transaction; the planner never takes a key.
                name = operation.name.value if operation.name else None
                key = IdempotencyKey(
                    caller, idempotency_key, fingerprint(parsed.text, name, variables)
                )
            elif self.plans is not None:
                prepared = self.plans.prepare(parsed, operation, variables, body)
                if prepared is not None:
                    answer = await serve_routed(state["reads"], prepared, consistency)
                    if answer is not None:
                        return Outcome(answer.body, label, "ok" if answer.ok else "error")
            result = await self.resolvers.execute(
                parsed,
                operation,
                variables,
                authorization,
                state,
                needs_database(operation),
                key,
                consistency=consistency,
            )
            outcome = "ok" if result.ok else ("bad_variables" if result.request_error else "error")
            headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
            return Outcome(
                result.body, label, outcome, request_error=result.request_error, headers=headers
            )
        except Refused as refused:  # no operation ran: none is named in the metrics
            return Outcome(b"", None, refused.outcome, refused)
        except ServerBusy as error:
            shed = busy(error)
            return Outcome(b"", None, shed.outcome, shed)

    async def admit(
        self, request: dict[str, Any], authorization: str | None, method: str = "POST"
    ) -> tuple[ParsedDocument, OperationDefinitionNode, dict[str, Any], str]:
        """Everything but the cost, cheapest first: shape, document, operation, credentials,
        list caps. Refused with the first problem found. `method` "SUBSCRIBE": the live
        transports (api.live), the only way a subscription comes in."""
        variables = request.get("variables")
        name = request.get("operationName")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            raise Refused(RequestCode.BAD_REQUEST, "Variables must be a JSON object")
        if not isinstance(name, str | None):
            raise Refused(RequestCode.BAD_REQUEST, "operationName must be a string")
        if not isinstance(request.get("extensions"), dict | None):
            raise Refused(RequestCode.BAD_REQUEST, "extensions must be a JSON object")
        source = await self.sources.document(request)
        parsed = self.documents.get(source.text, trusted=source.stored)
        operation = parsed.operation(name)
        if method == "GET" and operation.operation is not OperationType.QUERY:
            raise Refused(
                RequestCode.METHOD_NOT_ALLOWED,
                f"A {operation.operation.value} cannot be sent over GET; POST it",
                headers={"Allow": "POST"},
                reason="mutation_over_get",
            )
        if operation.operation is OperationType.SUBSCRIPTION and method != "SUBSCRIBE":
            raise Refused(
                RequestCode.BAD_REQUEST, "Subscriptions are not served over a POST request"
            )
        caller = await self.policy.authorise(operation, authorization)
        self.policy.check_lists(operation, variables)
        return parsed, operation, variables, caller

    def cost(
        self, parsed: ParsedDocument, operation: OperationDefinitionNode, variables: dict[str, Any]
    ) -> int:
        """The operation's cost, remembered per value of its page-size variables."""
        memo: dict[Any, int] = parsed.extra.setdefault(("costs", id(operation)), {})
        sizes = parsed.extra.get(("sizes", id(operation)))
        if sizes is None:
            sizes = parsed.extra[("sizes", id(operation))] = size_variables(operation)
        key = tuple(_hashable(variables.get(v)) for v in sizes)
        cost = memo.get(key)
        if cost is None:
            cost = self.policy.cost(operation, parsed.fragments, variables)
            if len(memo) < MAX_SIZE_MEMO:
                memo[key] = cost
        return cost

    async def _batch(
        self,
        requests: list[Any],
        authorization: str | None,
        media: Media,
        state: dict[str, Any],
        consistency: Consistency,
    ) -> Reply:
        if not self.batch_max_operations:
            return self._refused(Refused(RequestCode.BAD_REQUEST, "Batching is not enabled"), media)
        if len(requests) > self.batch_max_operations:
            return self._refused(
                Refused(
                    RequestCode.BAD_REQUEST,
                    f"Too many operations in a batch: at most {self.batch_max_operations}",
                ),
                media,
            )
        if not requests or not all(isinstance(r, dict) for r in requests):
            return self._refused(
                Refused(RequestCode.BAD_REQUEST, "A batch must be a list of request objects"),
                media,
                reason="not_an_operation",
            )
        # The cost limit counts the whole batch: a batch is one request's worth of work.
        total = 0
        for request in requests:
            try:
                parsed, operation, variables, _ = await self.admit(request, authorization)
            except (Refused, ServerBusy):
                continue  # answered in its place below
            total += self.cost(parsed, operation, variables)
        try:
            self.policy.check_cost(total)
        except Refused as refused:
            return self._refused(refused, media)
        parts = []
        outcomes = []
        for request in requests:
            outcome = await self.run(
                request, authorization, state, costed=True, consistency=consistency
            )
            outcomes.append(outcome)
            parts.append(
                orjson.dumps({"errors": outcome.refused.errors})
                if outcome.refused is not None
                else outcome.body
            )
        worst = next((o for o in outcomes if o.outcome != "ok"), outcomes[0])
        record_operation(worst.operation or "anonymous", worst.outcome)
        return Reply.graphql(b"[" + b",".join(parts) + b"]", media, ok=worst.outcome == "ok")

    def _planned(self, answer: Answer, prepared: Prepared, media: Media) -> Reply:
        record_operation(prepared.operation_name or "anonymous", "ok" if answer.ok else "error")
        return Reply.graphql(answer.body, media, ok=answer.ok)

    @staticmethod
    def _refused(refused: Refused, media: Media, *, reason: str | None = None) -> Reply:
        """A refusal, counted once: as an HTTP rejection when the request was not well-formed
        GraphQL over HTTP (or was shed), else as a refused operation with its outcome."""
        if reason is not None or refused.code in ALWAYS_STATUS:
            record_rejection(reason or refused.reason or refused.code.value.lower())
        else:
            record_operation("anonymous", refused.outcome)
        strict = media is Media.GRAPHQL_RESPONSE_JSON or refused.code in ALWAYS_STATUS
        status = STATUS[refused.code] if strict else 200
        return Reply.refused(refused, media, status)


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _hashable(value: Any) -> Any:
    return value if isinstance(value, int | str | float | bool | None) else repr(value)
