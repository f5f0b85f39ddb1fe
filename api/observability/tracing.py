"""Traces for operators who ask for them: OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT
is set.

When on, a request gets three kinds of span, all in one trace:
- an HTTP server span, from OpenTelemetry's ASGI middleware, which continues the caller's
  trace when the request carries a `traceparent` header;
- a GraphQL operation span, opened by the front door once it knows which operation runs
  (`trace_operation`), the same whether the planner or the resolvers answer it;
- one client span per SQL statement, from OpenTelemetry's asyncpg instrumentation: the
  planner's read pool and SQLAlchemy both speak asyncpg, so one instrumentation sees every
  statement of either executor, and only once.

Everything else is the SDK reading the standard OTEL_* variables itself: the service name and
resource attributes, the sampler, the batch processor's sizes, the exporter's headers, timeout
and compression, the propagators.

When off nothing is installed: no middleware, no patched driver, and the front door's hook is
one context-variable read.
"""

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from graphql import OperationDefinitionNode
from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.observability.shown_documents import shown_document
from api.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

# The SDK, the exporter and the instrumentations are imported only when tracing is on: a
# process that traces nothing does not even load them (about 0.1 s at start-up).

DEFAULT_SERVICE_NAME = "catalog-api"
# The GraphQL span attributes of OpenTelemetry's semantic conventions.
OPERATION_NAME = "graphql.operation.name"
OPERATION_TYPE = "graphql.operation.type"
DOCUMENT = "graphql.document"


@dataclass
class OperationSpans:
    """The operation spans of one HTTP request (a batch has several, one after another)."""

    tracer: trace.Tracer
    span: trace.Span | None = None
    token: object = None

    def start(self, operation: OperationDefinitionNode) -> None:
        self.end()
        kind = operation.operation.value
        attributes = {OPERATION_TYPE: kind, DOCUMENT: shown_document(operation)}
        name = kind
        if operation.name is not None:
            attributes[OPERATION_NAME] = operation.name.value
            name = f"{kind} {operation.name.value}"
        self.span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        # Current, so the statements the operation runs are its children.
        self.token = context.attach(trace.set_span_in_context(self.span))

    def end(self, error: BaseException | None = None) -> None:
        if self.span is None:
            return
        context.detach(self.token)  # type: ignore[arg-type]
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
        self.span.end()
        self.span = None


_current: ContextVar[OperationSpans | None] = ContextVar("operation_spans", default=None)


@contextmanager
def untraced() -> Iterator[None]:
    """Background work (the live service's reads, renders and purges) sends no spans: no
    request asked for it, and a trace of its own per wake-up would be noise."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def trace_operation(operation: OperationDefinitionNode) -> None:
    """The front door's hook: `operation` is about to run. A no-op unless tracing is on."""
    spans = _current.get()
    if spans is not None:
        spans.start(operation)


class OperationSpanScope(HttpMiddleware):
    """Pure ASGI, innermost: gives each request a place for its operation spans, and ends
    them once the response is sent, inside the HTTP server span."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        super().__init__(app)
        self.tracer = tracer
        self.untraced = suppress_instrumentation

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            # No server span: a path excluded by OTEL_PYTHON_EXCLUDED_URLS. Its statements go
            # untraced too, rather than each starting a trace of its own.
            with self.untraced():
                await self.app(scope, receive, send)
            return
        spans = OperationSpans(self.tracer)
        token = _current.set(spans)
        try:
            await self.app(scope, receive, send)
        except BaseException as error:
            spans.end(error)
            raise
        finally:
            spans.end()
            _current.reset(token)


def route_span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Server spans are named by route ("POST /graphql"), never by the raw path, which is
    whatever a client sent."""
    method = scope.get("method", "")
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return f"{method} {route.path}", {"http.route": route.path}
    return method, {}


class Instrumentor(Protocol):
    """What we use of an OpenTelemetry instrumentor (the asyncpg one has no type hints)."""

    @property
    def is_instrumented_by_opentelemetry(self) -> bool: ...
    def instrument(self, **kwargs: Any) -> None: ...
    def uninstrument(self, **kwargs: Any) -> None: ...


def asyncpg_instrumentor() -> Instrumentor:
    """The process's one asyncpg instrumentor (instrumentors are singletons)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor: Instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    return instrumentor


def resource() -> "Resource":
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, else this service's own name."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return detected


class Tracing:
    """One app's tracer provider and what it installs: built by `start_tracing`."""

    def __init__(self, processor: "SpanProcessor") -> None:
        from opentelemetry.sdk.trace import TracerProvider

        self.provider = TracerProvider(resource=resource())  # sampler: OTEL_TRACES_SAMPLER
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("api.graphql")
        self._background = ExitStack()

    def server_middleware(self) -> Middleware:
        """The HTTP server span: outermost, so it covers everything the app does."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.util.http import get_excluded_urls

        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            meter_provider=NoOpMeterProvider(),  # /metrics is Prometheus' (observability.metrics)
            excluded_urls=get_excluded_urls("ASGI"),  # OTEL_PYTHON_(ASGI_)EXCLUDED_URLS
            default_span_details=route_span_details,
            exclude_spans=["receive", "send"],  # a span per ASGI message is noise, and costs
        )

    def operation_middleware(self) -> Middleware:
        """Innermost, so the operation span ends inside the server span."""
        return Middleware(OperationSpanScope, tracer=self.tracer)

    def instrument(self) -> None:
        """Patches asyncpg for this process, for as long as the app runs: the lifespan calls
        this first, and `shutdown` last.

        What the lifespan starts on its own (the replica position poller, the idempotency key
        expiry) runs untraced: outside any request, each of its statements would be a trace of
        its own, several a second. Tasks copy the context they start in, so suppressing
        instrumentation in the lifespan's context reaches them and no request.
        """
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        asyncpg_instrumentor().instrument(tracer_provider=self.provider)
        self._background.enter_context(suppress_instrumentation())

    async def shutdown(self) -> None:
        """Unpatches asyncpg and sends the spans still batched (in a thread: it may wait on the
        collector)."""
        self._background.close()
        asyncpg_instrumentor().uninstrument()
        await asyncio.to_thread(self.provider.shutdown)


def start_tracing(settings: Settings, exporter: "SpanExporter | None" = None) -> Tracing | None:
    """Tracing for an app, or None when OTEL_EXPORTER_OTLP_ENDPOINT is unset or empty (or the
    SDK is disabled with OTEL_SDK_DISABLED=true).

    `exporter`, when given, replaces the OTLP exporter and gets each span as it ends (tests
    pass an in-memory one); otherwise spans are batched and sent over OTLP/HTTP (protobuf).
    """
    if not settings.otel_exporter_otlp_endpoint:  # compose files often set it to ""
        return None
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is not None:
        return Tracing(SimpleSpanProcessor(exporter))
    endpoint = None
    if not {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} & set(os.environ):
        # Set in .env, not the environment, so the SDK cannot see it: the base URL plus the
        # signal's path, as the SDK would have made it.
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    return Tracing(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
