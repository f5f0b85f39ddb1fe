"""The typed context every resolver receives: settings, the request's session and loaders."""

import logging
from dataclasses import dataclass, field

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.extensions import SchemaExtension

from api.graphql.loaders import Loaders, create_loaders
from api.graphql.sessions import RequestSession
from api.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: RequestSession
    authorization: str | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = create_loaders(self.db)

    def forget_loaded(self) -> None:
        """After a write, cached rows may be stale: later fields load afresh."""
        self.loaders = create_loaders(self.db)


def build_context(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    authorization: str | None = None,
) -> Context:
    return Context(
        settings=settings,
        db=RequestSession(session_factory, read_timeout=settings.db_read_timeout),
        authorization=authorization,
    )


Info = strawberry.Info[Context, None]
log = logging.getLogger(__name__)


class CloseSession(SchemaExtension):
    """Return the request's connection to the pool once the operation has finished."""

    async def on_operation(self):  # type: ignore[no-untyped-def]
        yield
        context = self.execution_context.context
        if isinstance(context, Context):
            try:
                await context.db.close()
            except Exception:  # the response is already decided; never let this reach it
                log.exception("closing the request's database session failed")
