"""What one persisted document may be, checked before anything is written."""

from dataclasses import dataclass

from api.documents.errors import DocumentTooLarge, HashMismatch, UnstorableText
from api.documents.ids import SHA256_PREFIX, is_content_hash, sha256_hex
from api.settings import setting

CACHE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class DocumentLimits:
    """`settings.options(DocumentLimits)` fills it from PERSISTED_DOCUMENTS_*."""

    max_bytes: int = setting("persisted_documents_max_bytes")
    max_count: int = setting("persisted_documents_max_count")
    cache_bytes: int = CACHE_BYTES


def check_document(document_id: str, text: str, limits: DocumentLimits) -> None:
    """Refuse what must never be stored: oversized, unstorable, or not what its hash says.

    The size is checked before the hash, so an oversized text costs no hashing.
    """
    if not text.strip():
        raise UnstorableText("the document is empty")
    if "\x00" in text:
        raise UnstorableText("the document holds a NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnstorableText("the document is not valid Unicode") from None
    if size > limits.max_bytes:
        raise DocumentTooLarge(
            f"the document is {size} bytes, over the limit of {limits.max_bytes}"
            " (PERSISTED_DOCUMENTS_MAX_BYTES)"
        )
    if is_content_hash(document_id):
        actual = sha256_hex(text)
        if document_id[len(SHA256_PREFIX) :] != actual:
            raise HashMismatch(f"the hash is not the text's sha256, which is {actual}")
