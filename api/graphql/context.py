"""The typed context every resolver receives: settings, the request's session and loaders."""

import logging
from dataclasses import dataclass, field

import strawberry
from graphql import DocumentNode
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
    # The document the front door already parsed and validated: the resolvers run it as is.
    document: DocumentNode | None = None
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
    document: DocumentNode | None = None,
    read_timeout: float | None = None,
) -> Context:
    """`read_timeout`, when given, is what is left of the request's read budget."""
    budget = settings.db_read_timeout if read_timeout is None else read_timeout
    return Context(
        settings=settings,
        db=RequestSession(session_factory, read_timeout=budget),
        authorization=authorization,
        document=document,
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


class PreparedDocument(SchemaExtension):
    """Run the document the front door parsed and validated, without parsing or validating
    it again (a schema executed directly, as in schema-level tests, parses as usual)."""

    def on_parse(self):  # type: ignore[no-untyped-def]
        context = self.execution_context.context
        if isinstance(context, Context) and context.document is not None:
            self.execution_context.graphql_document = context.document
        yield

    def on_validate(self):  # type: ignore[no-untyped-def]
        context = self.execution_context.context
        if isinstance(context, Context) and context.document is not None:
            self.execution_context.pre_execution_errors = []
        yield
