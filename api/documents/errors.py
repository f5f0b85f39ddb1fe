"""Why a document was not stored or an id not understood: one class per reason, each with a code.

The codes are suggestions for the GraphQL error a door answers with; the CLI prints the
message alone.
"""

from typing import ClassVar


class DocumentRefused(ValueError):
    """A persisted document (or its id) that the store will not take."""

    code: ClassVar[str] = "PERSISTED_DOCUMENT_REFUSED"

    def __init_subclass__(cls, *, code: str, **kwargs: object) -> None:
        """Each reason names its code where it is declared: a reason without one is an
        error at import, not the generic code at run time."""
        super().__init_subclass__(**kwargs)
        cls.code = code


class InvalidDocumentId(DocumentRefused, code="PERSISTED_DOCUMENT_INVALID_ID"):
    """An id in none of the accepted forms (sha256 hex, `sha256:<hex>`, a Relay id)."""


class HashMismatch(DocumentRefused, code="PERSISTED_QUERY_HASH_MISMATCH"):
    """The text's sha256 is not the id it came with (APQ registration, manifests)."""


class DocumentTooLarge(DocumentRefused, code="PERSISTED_DOCUMENT_TOO_LARGE"):
    """More UTF-8 bytes than PERSISTED_DOCUMENTS_MAX_BYTES."""


class UnstorableText(DocumentRefused, code="PERSISTED_DOCUMENT_INVALID"):
    """Text Postgres cannot store (a NUL character, an unpaired surrogate) or empty text."""


class ConflictingDocument(DocumentRefused, code="PERSISTED_DOCUMENT_CONFLICT"):
    """The id is stored already, with other text: a stored id never changes its text."""


class StoreFull(DocumentRefused, code="PERSISTED_DOCUMENTS_FULL"):
    """APQ has registered PERSISTED_DOCUMENTS_MAX_COUNT documents: no more at run time."""
