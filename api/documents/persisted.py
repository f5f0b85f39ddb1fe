"""The persisted documents as the request pipeline uses them: this process's cache, then Postgres.

One instance per app, made in its lifespan beside the engine. A lookup the cache answers costs
no connection; one it cannot answer costs one short read, and a document found is cached.
"""

from sqlalchemy.ext.asyncio import AsyncEngine

from api.documents import store
from api.documents.cache import DocumentCache
from api.documents.limits import DocumentLimits


class PersistedDocuments:
    def __init__(self, engine: AsyncEngine, limits: DocumentLimits) -> None:
        self.engine = engine
        self.limits = limits
        self.cache = DocumentCache(limits.cache_bytes)

    async def lookup(self, document_id: str) -> str | None:
        """The text stored under the canonical `document_id`, or None if none is stored."""
        text = self.cache.get(document_id)
        if text is not None:
            return text
        async with self.engine.connect() as connection:
            text = await store.lookup(connection, document_id)
        if text is not None:
            self.cache.put(document_id, text)
        return text

    async def register(self, document_id: str, text: str, *, source: store.Source = "apq") -> bool:
        """Store `text` in its own transaction (store.register says what may be refused);
        True if it is new. The caller decides whether TRUSTED_DOCUMENTS allows it at all."""
        async with self.engine.begin() as connection:
            new = await store.register(
                connection, document_id, text, source=source, limits=self.limits
            )
        self.cache.put(document_id, text)
        return new
