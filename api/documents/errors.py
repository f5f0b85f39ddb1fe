"""Why a document was not stored or an id not understood: one class per reason, each with a code.

The codes are suggestions for the GraphQL error a door answers with; the CLI prints the
message alone.
"""

from typing import ClassVar


class DocumentRefused(ValueError):
    """A persisted document (or its id) that the store will not take."""

    code: ClassVar[str] = "PERSISTED_DOCUMENT_REFUSED"


class InvalidDocumentId(DocumentRefused):
    """An id in none of the accepted forms (sha256 hex, `sha256:<hex>`, a Relay id)."""

    code = "PERSISTED_DOCUMENT_INVALID_ID"


class HashMismatch(DocumentRefused):
    """The text's sha256 is not the id it came with (APQ registration, manifests)."""

    code = "PERSISTED_QUERY_HASH_MISMATCH"


class DocumentTooLarge(DocumentRefused):
    """More UTF-8 bytes than PERSISTED_DOCUMENTS_MAX_BYTES."""

    code = "PERSISTED_DOCUMENT_TOO_LARGE"


class UnstorableText(DocumentRefused):
    """Text Postgres cannot store (a NUL character, an unpaired surrogate) or empty text."""

    code = "PERSISTED_DOCUMENT_INVALID"


class ConflictingDocument(DocumentRefused):
    """The id is stored already, with other text: a stored id never changes its text."""

    code = "PERSISTED_DOCUMENT_CONFLICT"


class StoreFull(DocumentRefused):
    """APQ has registered PERSISTED_DOCUMENTS_MAX_COUNT documents: no more at run time."""

    code = "PERSISTED_DOCUMENTS_FULL"
