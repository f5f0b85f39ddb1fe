"""The ASGI application: GraphQL at /graphql, health checks, and the engine's lifespan."""

import gc
import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from asgi_correlation_id import CorrelationIdMiddleware
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from strawberry.asgi import GraphQL

from api.db.compatibility import Compatibility
from api.db.engine import EngineOptions, create_engine, create_session_factory
from api.db.reads import create_read_pool
from api.graphiql import ASSETS_PATH, GraphiQLAssets, graphiql_page
from api.graphql.context import Context, build_context
from api.graphql.limits import document_limits
from api.graphql.planner.endpoint import GraphQLEndpoint
from api.graphql.planner.fastpath import QueryPlans
from api.graphql.schema import SchemaOptions, build_schema
from api.guards import GraphQLRequestGuard
from api.health import healthz, readyz
from api.observability.metrics import Metrics
from api.observability.requests import RequestLogMiddleware, record_rejection
from api.settings import Settings
from api.unhandled import UnhandledErrors, last_resort


class CatalogGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with a typed context built from the app's lifespan state."""

    def decode_json(self, data: str | bytes) -> object:
        """orjson, and a 400 for any body that is not an operation (or a list of them).

        Strawberry only expects a JSON syntax error; invalid UTF-8, absurd nesting or a bare
        number would otherwise surface as a 500.
        """
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            record_rejection("invalid_json")
            raise HTTPException(
                400, "The request body is not valid JSON (or holds invalid unicode)"
            ) from None
        operations = value if isinstance(value, list) else [value]
        if not all(isinstance(operation, dict) for operation in operations):
            record_rejection("not_an_operation")
            raise HTTPException(400, "The body must be a GraphQL request object")
        return value

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our own GraphiQL page: its assets come from this service, not from a CDN."""
        return graphiql_page()

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return build_context(
            request.state.settings,
            request.state.session_factory,
            authorization=request.headers.get("authorization"),
        )


UUID_BITS = 2**128 - 1
VERSION_BITS, VERSION_4 = 0xF000 << 64, 4 << 76
VARIANT_BITS, VARIANT_RFC_4122 = 0xC000 << 48, 0x8000 << 48


def request_ids() -> Callable[[], str]:
    """Unique version-4 UUIDs without a system call each: a random start, then a counter.

    uuid4() reads the kernel's random source per request, a visible cost at thousands of
    requests per second; a request id only needs to be unique, not unguessable.
    """
    start = secrets.randbits(128)
    counter = itertools.count()

    def next_id() -> str:
        # What uuid.UUID(int=..., version=4).hex gives, without building the object.
        value = (start + next(counter)) & UUID_BITS & ~VERSION_BITS & ~VARIANT_BITS
        return f"{value | VERSION_4 | VARIANT_RFC_4122:032x}"

    return next_id


def server_made_id(ids: Callable[[], str]) -> Callable[[str], str]:
    """A CorrelationIdMiddleware transformer that ignores the client's id for one of `ids`."""

    def replace(_: str) -> str:
        return ids()

    return replace


def query_plans_for(settings: Settings) -> QueryPlans | None:
    """The planner's document cache, with the limits the ordinary path applies; None when off."""
    if not settings.query_planner:
        return None
    return QueryPlans(
        build_schema(settings.options(SchemaOptions)).graphql_schema,
        validation_rules=[document_limits(settings.max_query_depth, settings.max_aliases)],
        max_tokens=settings.max_tokens,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        max_cost=settings.max_query_cost,
        api_tokens=settings.api_tokens,
    )


def create_app(settings: Settings) -> Starlette:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine_options = settings.options(EngineOptions)
        engine = create_engine(settings.database, engine_options)
        read_pool = await create_read_pool(settings.database, engine_options)
        metrics.watch_pools(engine, read_pool)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's generations, so collections stay short and latency tails stay flat.
        gc.freeze()
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "session_factory": create_session_factory(engine),
                "query_plans": query_plans,
                "read_pool": read_pool,
                "compatibility": Compatibility(),
            }
        finally:
            await read_pool.close()
            await engine.dispose()

    schema = build_schema(settings.options(SchemaOptions))
    query_plans = query_plans_for(settings)
    graphql = GraphQLEndpoint(
        CatalogGraphQL(
            schema,
            graphql_ide=None if settings.production else "graphiql",
            allow_queries_via_get=False,
        )
    )
    cors = (
        [
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["POST", "OPTIONS"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-request-id",
                    "apollographql-client-name",  # Apollo Client's client awareness
                    "apollographql-client-version",
                ],
                expose_headers=["x-request-id"],
                max_age=600,
            )
        ]
        if settings.cors_origins
        else []
    )
    return Starlette(
        routes=[
            Route("/graphql", graphql),  # first: nearly every request is for it
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
            Middleware(
                CorrelationIdMiddleware,
                header_name="X-Request-ID",
                # The server always makes the id: a client's X-Request-ID could repeat another
                # request's. The transformer replaces whatever the middleware found or made
                # (nothing, from `generator`); a well-formed client id is logged beside ours
                # (api.observability.clients).
                generator=str,
                validator=None,
                transformer=server_made_id(request_ids()),
                # The id is read from its context variable, never from the request's headers:
                # rewriting them per request would be wasted work.
                update_request_header=False,
            ),
            Middleware(RequestLogMiddleware, metrics=metrics),
            *cors,
            Middleware(UnhandledErrors),
            Middleware(
                GraphQLRequestGuard, path="/graphql", max_body_bytes=settings.max_body_bytes
            ),
        ],
        lifespan=lifespan,
        exception_handlers={Exception: last_resort(settings.cors_origins)},
    )
