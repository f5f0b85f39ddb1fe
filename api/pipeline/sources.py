"""Where a request's document comes from: its text, or a persisted document it names.

Three doors name a stored document: the GraphQL over HTTP spec's `documentId`, Apollo's
automatic persisted queries (`extensions.persistedQuery.sha256Hash`) and Relay's `doc_id`.
TRUSTED_DOCUMENTS decides what runs: `off` any document, `log` any (noting the ones not
stored), `require` stored documents only (raw text runs only when its hash is stored, and
APQ may not register new ones).
"""

import logging
from dataclasses import dataclass
from typing import Any

from api.documents import (
    DocumentRefused,
    HashMismatch,
    PersistedDocuments,
    StoreFull,
    from_apq_hash,
    from_document_id,
    from_relay_doc_id,
    sha256_id,
)
from api.graphql.errors import DATABASE_UNAVAILABLE_MESSAGE, is_database_unavailable
from api.pipeline.refusals import Refused, RequestCode

log = logging.getLogger(__name__)
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"  # the message Apollo's link looks for
UNDEFINED_TABLE = "42P01"


@dataclass(frozen=True)
class Source:
    text: str
    stored: bool  # a persisted document: trusted, so it may be larger than a raw one


def _apq_hash(extensions: Any) -> object | None:
    if not isinstance(extensions, dict):
        return None
    persisted = extensions.get("persistedQuery")
    if not isinstance(persisted, dict):
        return None
    return persisted.get("sha256Hash")


def database_refusal(error: Exception) -> Refused:
    """The store could not be read: a database that is away or not migrated, said plainly."""
    if _sqlstate(error) == UNDEFINED_TABLE:
        log.error("persisted_documents is missing: run `python -m api migrate`")
        return Refused(
            RequestCode.DATABASE_NOT_MIGRATED,
            "The database is not migrated to this version; the operator must run migrations",
        )
    if not is_database_unavailable(error):
        raise error
    log.warning("persisted documents unreadable: %r", error)
    return Refused(
        RequestCode.DATABASE_UNAVAILABLE,
        DATABASE_UNAVAILABLE_MESSAGE,
        headers={"Retry-After": "1"},
    )


def _sqlstate(error: BaseException | None) -> str | None:
    while error is not None:
        state = getattr(error, "sqlstate", None) or getattr(
            getattr(error, "orig", None), "sqlstate", None
        )
        if isinstance(state, str):
            return state
        error = error.__cause__
    return None


def _not_found() -> Refused:
    return Refused(RequestCode.PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE)


def _bad_id(error: DocumentRefused) -> Refused:
    return Refused(RequestCode.BAD_REQUEST, str(error))


class Sources:
    def __init__(self, store: PersistedDocuments | None, mode: str) -> None:
        self.store = store
        self.mode = mode

    async def document(self, request: dict[str, Any]) -> Source:
        """The document text the request runs; Refused when there is none it may run."""
        query = request.get("query")
        named = request.get("documentId")
        relay = request.get("doc_id")
        apq = _apq_hash(request.get("extensions"))
        try:
            if named is not None:
                return await self._stored(from_document_id(named))
            if relay is not None:
                return await self._stored(from_relay_doc_id(relay))
            if apq is not None:
                return await self._apq(from_apq_hash(apq), query)
        except DocumentRefused as error:
            raise _bad_id(error) from None
        if not isinstance(query, str):
            raise Refused(RequestCode.BAD_REQUEST, "No GraphQL query found in the request")
        return await self._raw(query)

    async def _lookup(self, document_id: str) -> str | None:
        if self.store is None:
            return None
        try:
            return await self.store.lookup(document_id)
        except Exception as error:
            raise database_refusal(error) from None

    async def _stored(self, document_id: str) -> Source:
        text = await self._lookup(document_id)
        if text is None:
            raise _not_found()
        return Source(text, stored=True)

    async def _apq(self, document_id: str, query: object) -> Source:
        if not isinstance(query, str):  # the hash alone: known, or ask for the text
            return await self._stored(document_id)
        if sha256_id(query) != document_id:
            raise Refused(
                RequestCode.BAD_REQUEST,
                "provided sha does not match query",
                errors=[
                    {
                        "message": "provided sha does not match query",
                        "extensions": {"code": HashMismatch.code},
                    }
                ],
            )
        if self.mode == "require":
            return await self._stored(document_id)  # registering is not allowed
        if self.store is not None:
            try:
                await self.store.register(document_id, query, source="apq")
            except StoreFull:
                log.info("APQ store is full: %s runs without being stored", document_id)
            except DocumentRefused as error:
                raise _bad_id(error) from None
            except Exception as error:
                raise database_refusal(error) from None
        return Source(query, stored=False)

    async def _raw(self, query: str) -> Source:
        if self.mode == "off":
            return Source(query, stored=False)
        stored = await self._lookup(sha256_id(query))
        if stored is not None:
            return Source(stored, stored=True)
        if self.mode == "require":
            raise Refused(
                RequestCode.PERSISTED_QUERY_REQUIRED,
                "Only persisted documents run here: send a documentId (or a stored document)",
            )
        log.info("a document that is not stored ran (TRUSTED_DOCUMENTS=log): %s", sha256_id(query))
        return Source(query, stored=False)
