"""Persisted documents in Postgres: look one up, register one (APQ), store a manifest's.

Every function takes the caller's connection or session and never commits: the caller's
transaction decides, so a manifest is stored whole or not at all. Registration is idempotent:
the same id with the same text again changes nothing, with other text it is refused.

PERSISTED_DOCUMENTS_MAX_COUNT bounds what APQ registers at run time, where anyone may send a
document; a manifest is the operator's, and is bounded by the size of each document only.
The count is read in the inserting statement, so concurrent registrations may pass it by at
most their number.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.models import PersistedDocument
from api.documents.errors import ConflictingDocument, DocumentRefused, StoreFull
from api.documents.limits import DocumentLimits, check_document

Database = AsyncConnection | AsyncSession
Source = Literal["manifest", "apq"]
# Rows per statement when storing a manifest: 3 parameters each, far below Postgres' 65,535.
BATCH = 1000


@dataclass(frozen=True)
class Document:
    """One document to store, under its canonical id (api.documents.ids)."""

    id: str
    text: str
    name: str | None = None


@dataclass(frozen=True)
class Stored:
    """What storing a set of documents did."""

    new: int
    existing: int


async def lookup(db: Database, document_id: str) -> str | None:
    """The text stored under the canonical `document_id`, or None."""
    found: str | None = await db.scalar(
        select(PersistedDocument.body).where(PersistedDocument.id == document_id)
    )
    return found


async def count(db: Database, *, source: Source | None = None) -> int:
    query = select(func.count()).select_from(PersistedDocument)
    if source is not None:
        query = query.where(PersistedDocument.source == source)
    return int(await db.scalar(query) or 0)


def _apq_has_room(limits: DocumentLimits) -> ColumnElement[bool]:
    registered = (
        select(func.count())
        .select_from(PersistedDocument)
        .where(PersistedDocument.source == "apq")
        .scalar_subquery()
    )
    return registered < limits.max_count


async def register(
    db: Database, document_id: str, text: str, *, source: Source, limits: DocumentLimits
) -> bool:
    """Store `text` under `document_id`; True if it is new, False if it was there already.

    Raises HashMismatch, DocumentTooLarge or UnstorableText for a document that must never be
    stored, ConflictingDocument if the id holds other text, StoreFull when APQ has registered
    its PERSISTED_DOCUMENTS_MAX_COUNT.
    """
    check_document(document_id, text, limits)
    row = select(literal(document_id), literal(text), literal(source))
    if source == "apq":
        row = row.where(_apq_has_room(limits))
    inserted = await db.scalar(
        insert(PersistedDocument)
        .from_select(["id", "body", "source"], row)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(PersistedDocument.id)
    )
    if inserted is not None:
        return True
    stored = await lookup(db, document_id)
    if stored is None and limits.max_count == 0:
        raise StoreFull(
            "registering documents at run time is off (PERSISTED_DOCUMENTS_MAX_COUNT=0)"
        )
    if stored is None:
        raise StoreFull(
            f"{limits.max_count} documents are registered already"
            " (PERSISTED_DOCUMENTS_MAX_COUNT): no more may be registered at run time"
        )
    if stored != text:
        raise ConflictingDocument(f"{document_id} is stored already, with other text")
    return False


def _batches(items: Sequence[Document]) -> Iterator[Sequence[Document]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _distinct(documents: Sequence[Document]) -> list[Document]:
    """Each id once; the same id twice with other text is refused."""
    seen: dict[str, Document] = {}
    for document in documents:
        earlier = seen.setdefault(document.id, document)
        if earlier.text != document.text:
            raise ConflictingDocument(f"{document.id} appears twice, with different text")
    return list(seen.values())


async def _stored_texts(db: Database, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(ids), BATCH):
        rows = await db.execute(
            select(PersistedDocument.id, PersistedDocument.body).where(
                PersistedDocument.id.in_(ids[start : start + BATCH])
            )
        )
        found.update({row.id: row.body for row in rows})
    return found


def _refuse_conflicts(documents: Sequence[Document], stored: dict[str, str]) -> None:
    for document in documents:
        if document.id in stored and stored[document.id] != document.text:
            raise ConflictingDocument(f"{document.id} is stored already, with other text")


async def register_all(
    db: Database, documents: Sequence[Document], *, limits: DocumentLimits
) -> Stored:
    """Store a manifest's documents (source "manifest"): all of them, or raise before writing.

    Every document is checked first, then compared with what is stored; only then are the
    new ones inserted, in batches. A document another loader inserted meanwhile counts as
    existing, once its text is compared too.
    """
    for document in documents:
        try:
            check_document(document.id, document.text, limits)
        except DocumentRefused as error:
            raise type(error)(f"{document.id}: {error}") from None
    distinct = _distinct(documents)
    stored = await _stored_texts(db, [document.id for document in distinct])
    _refuse_conflicts(distinct, stored)
    fresh = [document for document in distinct if document.id not in stored]
    new = 0
    for batch in _batches(fresh):
        rows = await db.execute(
            insert(PersistedDocument)
            .values([{"id": d.id, "body": d.text, "source": "manifest"} for d in batch])
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(PersistedDocument.id)
        )
        inserted = set(rows.scalars())
        new += len(inserted)
        raced = [document for document in batch if document.id not in inserted]
        if raced:
            _refuse_conflicts(raced, await _stored_texts(db, [d.id for d in raced]))
    return Stored(new=new, existing=len(distinct) - new)
