"""The ASGI application: GraphQL at /graphql, health checks, and the engine's lifespan."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.schema.schema import validate_document

from api.asgi import DirectRoute
from api.auth import Authenticator
from api.db.compatibility import Compatibility
from api.db.engine import EngineOptions, create_engine, create_session_factory
from api.db.reads import create_planner_pool
from api.db.replicas import Endpoint, open_read_router
from api.documents import DocumentLimits, PersistedDocuments
from api.graphiql import ASSETS_PATH, GraphiQLAssets, graphiql_page
from api.graphql.context import Context
from api.graphql.planner.fastpath import QueryPlans
from api.graphql.schema import CatalogSchema, SchemaOptions, build_schema, validation_rules
from api.graphql.seed_mutation import SEED_LIST_CAPS
from api.guards import GraphQLRequestGuard
from api.health import healthz, readyz
from api.live.listen import LOG_READER, listener_for
from api.live.options import TransportOptions
from api.live.service import LiveOptions, LiveService
from api.live.websocket import GraphQLWebSocket
from api.observability.metrics import Metrics
from api.observability.request_ids import request_ids
from api.observability.requests import RequestLogMiddleware
from api.observability.tracing import start_tracing
from api.pipeline.admission import Gate
from api.pipeline.budget import TokenBucket
from api.pipeline.documents import Documents
from api.pipeline.door import FrontDoor
from api.pipeline.idempotency import expire_periodically
from api.pipeline.policy import Policy
from api.pipeline.resolvers import Resolvers
from api.pipeline.sources import Sources
from api.settings import Settings
from api.unhandled import UnhandledErrors, last_resort

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


class GraphiQLPage(GraphQL[Context, None]):
    """Strawberry's ASGI view, kept for what is not a GraphQL request: GraphiQL's page for a
    browser's GET. Every POST goes through the front door (`api.pipeline.door`)."""

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our own GraphiQL page: its assets come from this service, not from a CDN."""
        return graphiql_page()


def front_door_for(settings: Settings, schema: CatalogSchema | None = None) -> FrontDoor:
    """The /graphql endpoint: documents, policy and both executors, built from the settings."""
    options = settings.options(SchemaOptions)
    schema = schema or build_schema(options)
    documents = Documents(
        schema.graphql_schema,
        validation_rules(options),
        validate=validate_document,
        tidy_errors=schema.process_errors,
        max_bytes=settings.max_document_bytes,
        max_tokens=settings.max_tokens,
        cache_bytes=settings.document_cache_bytes,
        parse_budget=TokenBucket(
            settings.new_document_bytes_per_second, 2 * settings.new_document_bytes_per_second
        ),
    )
    plans = (
        QueryPlans(
            schema.graphql_schema,
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            compile_budget=TokenBucket(
                settings.compiles_per_second, 2 * settings.compiles_per_second
            ),
            repeated_cache_bytes=settings.repeated_request_cache_bytes,
            charge=documents.charge,
        )
        if settings.query_planner
        else None
    )
    policy = Policy(
        authenticator=Authenticator(settings),
        list_caps=SEED_LIST_CAPS,
        max_cost=settings.max_query_cost,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
    )
    page = GraphiQLPage(
        schema,
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=False,
    )
    return FrontDoor(
        schema=schema,
        documents=documents,
        policy=policy,
        plans=plans,
        resolvers=Resolvers(schema, settings),
        page_view=page,
        batch_max_operations=settings.batch_max_operations,
        body_timeout=settings.http_body_timeout,
        sources=Sources(None, settings.trusted_documents),
        cache_max_age=settings.cache_max_age,
        anonymous_max_body_bytes=settings.anonymous_max_body_bytes,
        events=settings.options(TransportOptions),
    )


def create_app(settings: Settings, *, span_exporter: "SpanExporter | None" = None) -> Starlette:
    """`span_exporter` replaces the OTLP exporter when tracing is on (tests read the spans)."""
    metrics = Metrics()
    tracing = start_tracing(settings, span_exporter)  # None: OTEL_EXPORTER_OTLP_ENDPOINT unset

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if tracing is not None:  # first: what the lifespan starts itself stays untraced
            tracing.instrument()
        engine_options = settings.options(EngineOptions)
        engine = create_engine(settings.database, engine_options)
        session_factory = create_session_factory(engine)
        # The primary's planner pool runs planned writes and the reads that must see them;
        # each replica in DATABASE_READ_URLS has pools of its own (`db.replicas`).
        primary_pool = await create_planner_pool(settings.database, engine_options)
        reads = await open_read_router(
            Endpoint("primary", primary_pool, session_factory),
            settings.database,
            settings.read_databases,
            engine_options,
            max_lag=settings.database_read_max_lag,
            poll_interval=settings.database_read_poll_interval,
        )
        # Readiness asks over a connection of its own: a busy pool is not an unready instance.
        probe_engine = create_engine(
            settings.database, settings.options(EngineOptions, pool_size=1, max_overflow=0)
        )
        metrics.watch_pools(engine, primary_pool)
        metrics.watch_replicas(reads)
        # Persisted documents are read through the API's own engine (one small SELECT each,
        # cached by bytes in the process).
        graphql.sources.store = PersistedDocuments(engine, settings.options(DocumentLimits))
        resolver_gate = Gate(
            "resolvers",
            engine_options.pool_size + engine_options.max_overflow,
            engine_options.queue_limit,
        )
        # The admission gates in front of each pool, for /metrics and for the tests.
        app.state.gates = {
            "planner": primary_pool.gate,
            "resolvers": resolver_gate,
            **{f"replica {r.name}": r.endpoint.pool.gate for r in reads.replicas},
        }
        metrics.watch_gates(app.state.gates)
        app.state.reads = reads  # which endpoint serves a read, and what it last saw
        expiry = asyncio.create_task(
            expire_periodically(engine, settings.idempotency_retention_hours)
        )
        state: dict[str, Any] = {
            "settings": settings,
            "engine": engine,
            "session_factory": session_factory,  # the primary's
            "primary_pool": primary_pool,
            "reads": reads,
            "resolver_gate": resolver_gate,
            "probe_engine": probe_engine,
            "compatibility": Compatibility(),
        }
        log_pool = await create_planner_pool(
            settings.database,
            settings.options(EngineOptions, pool_size=2),
            name="live",
            application_name=LOG_READER,
        )
        live = state["live"] = LiveService(
            graphql, state, settings.options(LiveOptions), listener_for(settings), log_pool.pool
        )
        app.state.live = live  # the server ends subscriptions first on SIGTERM
        metrics.watch_live(live)
        await live.start()
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's generations, so collections stay short and latency tails stay flat.
        gc.freeze()
        try:
            yield state
        finally:
            await live.stop()
            await log_pool.close()
            expiry.cancel()
            await reads.aclose()
            await primary_pool.close()
            await graphql.policy.authenticator.aclose()
            await probe_engine.dispose()
            await engine.dispose()
            if tracing is not None:
                await tracing.shutdown()

    graphql = front_door_for(settings)
    cors = (
        [
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-consistency-token",
                    "x-request-id",
                    "apollographql-client-name",  # Apollo Client's client awareness
                    "apollographql-client-version",
                    "graphql-client-name",
                    "graphql-client-version",
                    "if-none-match",
                ],
                expose_headers=["x-request-id", "etag", "retry-after", "x-consistency-token"],
                max_age=600,
            )
        ]
        if settings.cors_origins
        else []
    )
    return Starlette(
        routes=[
            Route("/graphql", graphql),  # reached through `DirectRoute`, ahead of the router
            WebSocketRoute("/graphql", GraphQLWebSocket(settings.options(TransportOptions))),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(
                "/metrics",
                metrics.guarded_endpoint(
                    token=settings.metrics_token_value or None, production=settings.production
                ),
                methods=["GET"],
            ),
            *([] if settings.production else [Mount(ASSETS_PATH, GraphiQLAssets())]),
        ],
        middleware=[
            *([tracing.server_middleware()] if tracing else []),
            Middleware(RequestLogMiddleware, metrics=metrics, ids=request_ids()),
            *cors,
            Middleware(UnhandledErrors),
            Middleware(
                GraphQLRequestGuard, path="/graphql", max_body_bytes=settings.max_body_bytes
            ),
            *([tracing.operation_middleware()] if tracing else []),
            Middleware(DirectRoute, path="/graphql", endpoint=graphql),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: last_resort(settings.cors_origins)},
    )
