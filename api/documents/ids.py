"""Canonical document ids: one spelling per document, whichever door its id came through.

- A sha256 of the text, the content address every tool agrees on, is stored as
  `sha256:<64 lowercase hex>`: the GraphQL-over-HTTP spec's `documentId` spells it so, and
  Apollo's APQ `sha256Hash`, graphql-codegen's persisted-documents.json keys and Relay's ids
  under `algorithm: "SHA256"` are the same bare hex. So a document loaded from any manifest
  is found from any door that names it by its hash.
- Any other Relay `doc_id` (an md5 hex by default, or whatever a remote persister chose) is
  stored as `relay:<id>`. It is a name, not a hash of the text the server can check, so it
  gets a namespace of its own: it can never pose as, or collide with, a content hash.
"""

import hashlib
import re

from api.db.models import DOCUMENT_ID_MAX
from api.documents.errors import InvalidDocumentId

SHA256_PREFIX = "sha256:"
RELAY_PREFIX = "relay:"
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
RELAY_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{DOCUMENT_ID_MAX - len(RELAY_PREFIX)}}}")


def sha256_hex(text: str) -> str:
    """The lowercase hex sha256 of the text's UTF-8 bytes, as Apollo's APQ link and
    graphql-codegen compute it (both hash the exact string they send or write)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_id(text: str) -> str:
    """The canonical id of `text` as a content hash: `sha256:<hex>`."""
    return SHA256_PREFIX + sha256_hex(text)


def _sha256_or_none(value: str) -> str | None:
    hex_part = value[len(SHA256_PREFIX) :] if value.startswith(SHA256_PREFIX) else value
    if SHA256_HEX.fullmatch(hex_part):
        return SHA256_PREFIX + hex_part.lower()
    return None


def from_document_id(value: object) -> str:
    """The spec's `documentId`: `sha256:<hex>`, or the bare hex some clients send."""
    if isinstance(value, str) and (found := _sha256_or_none(value)):
        return found
    raise InvalidDocumentId(f"documentId must be sha256:<64 hex digits>, not {_shown(value)}")


def from_apq_hash(value: object) -> str:
    """Apollo's `extensions.persistedQuery.sha256Hash`: 64 hex digits."""
    if isinstance(value, str) and SHA256_HEX.fullmatch(value):
        return SHA256_PREFIX + value.lower()
    raise InvalidDocumentId(f"sha256Hash must be 64 hex digits, not {_shown(value)}")


def from_relay_doc_id(value: object) -> str:
    """Relay's `doc_id`: a sha256 hex joins the content hashes, anything else is `relay:<id>`."""
    if isinstance(value, str):
        if found := _sha256_or_none(value):
            return found
        if RELAY_ID.fullmatch(value):
            return RELAY_PREFIX + value
    raise InvalidDocumentId(
        f"doc_id must be 1 to {DOCUMENT_ID_MAX - len(RELAY_PREFIX)} letters, digits or _.:-,"
        f" not {_shown(value)}"
    )


def is_content_hash(document_id: str) -> bool:
    """Whether the canonical id is a hash the text can be checked against."""
    return document_id.startswith(SHA256_PREFIX)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
