"""Persisted documents: GraphQL documents stored under an id, so a request may name one.

- ids.py: the canonical id for each door (documentId, APQ sha256Hash, Relay doc_id)
- limits.py: what one document may be (size, hash), checked before anything is stored
- store.py: lookup and registration in Postgres, on the caller's connection
- cache.py: this process's byte-bounded cache of stored documents
- persisted.py: cache and store together, as the request pipeline holds them
- manifests.py: codegen, Relay and Apollo manifests, read and checked for `documents load`
"""

from api.documents.errors import (
    ConflictingDocument,
    DocumentRefused,
    DocumentTooLarge,
    HashMismatch,
    InvalidDocumentId,
    StoreFull,
    UnstorableText,
)
from api.documents.ids import (
    from_apq_hash,
    from_document_id,
    from_relay_doc_id,
    sha256_hex,
    sha256_id,
)
from api.documents.limits import DocumentLimits
from api.documents.persisted import PersistedDocuments

__all__ = [
    "ConflictingDocument",
    "DocumentLimits",
    "DocumentRefused",
    "DocumentTooLarge",
    "HashMismatch",
    "InvalidDocumentId",
    "PersistedDocuments",
    "StoreFull",
    "UnstorableText",
    "from_apq_hash",
    "from_document_id",
    "from_relay_doc_id",
    "sha256_hex",
    "sha256_id",
]
