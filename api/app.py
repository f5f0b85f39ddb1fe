"""The ASGI application: GraphQL at /graphql, health checks, and the engine's lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from api.db.engine import create_engine, create_session_factory
from api.graphql.context import Context, build_context
from api.graphql.schema import schema
from api.health import healthz, readyz
from api.settings import Settings


class CatalogGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view, with a typed context built from the app's lifespan state."""

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return build_context(request.state.settings, request.state.session_factory)


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = create_engine(
            settings.database,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "session_factory": create_session_factory(engine),
            }
        finally:
            await engine.dispose()

    graphql = CatalogGraphQL(schema, graphql_ide="graphiql", allow_queries_via_get=False)
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
