"""Read a manifest of persisted documents, whichever tool wrote it, and check every entry.

Three shapes are recognised:

- graphql-codegen's client preset, `persisted-documents.json`: `{"<sha256 hex>": "<text>"}`
  (`presetConfig.persistedDocuments`, whose `hashAlgorithm` is sha256 by default);
- Relay's persisted queries, as relay-compiler writes them with `persistConfig.file`:
  `{"<id>": "<text>"}`, the id an md5 hex by default;
- Apollo's persisted-query manifest (`generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1,
    "operations": [{"id", "name", "type", "body"}]}`.

The first two are one shape: a map whose keys are all sha256 hashes is codegen's, any other is
Relay's. Each key becomes a canonical id by Relay's rule (api.documents.ids), which sends a
sha256 key to the content hashes either way, so the guess only names the format in messages.

Every entry is checked before anything is stored: the text parses as GraphQL and holds an
operation, fits PERSISTED_DOCUMENTS_MAX_BYTES, and a sha256 id is its text's hash. The first
problem is one line, naming the file and the entry.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse

from api.documents.errors import DocumentRefused
from api.documents.ids import from_apq_hash, from_relay_doc_id, is_content_hash
from api.documents.limits import DocumentLimits, check_document
from api.documents.store import Document

CODEGEN = "graphql-codegen persisted documents"
RELAY = "Relay persisted queries"
APOLLO = "Apollo persisted-query manifest"
APOLLO_FORMAT = "apollo-persisted-query-manifest"
APOLLO_VERSION = 1
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
SHAPES = (
    'expected {"<hash or id>": "<document>", …} (graphql-codegen, Relay) or'
    f' {{"format": "{APOLLO_FORMAT}", …}} (Apollo)'
)


class ManifestError(ValueError):
    """A manifest that cannot be stored as it is; the message is one line naming the entry."""


@dataclass(frozen=True)
class Manifest:
    format: str
    documents: list[Document]


def read_manifest(path: Path, limits: DocumentLimits) -> Manifest:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_manifest(raw, limits, name=str(path))


def parse_manifest(raw: bytes | str, limits: DocumentLimits, *, name: str) -> Manifest:
    """The manifest in `raw`, every entry checked; ManifestError on the first problem."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"{name}: not JSON: {str(error).splitlines()[0]}") from None
    if isinstance(data, dict) and "format" in data:
        manifest_format, entries = APOLLO, list(_apollo_entries(data, name))
    elif isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        manifest_format, entries = _flat_format(data), list(_flat_entries(data, name))
    elif data == {}:
        raise ManifestError(f"{name}: the manifest holds no documents")
    else:
        raise ManifestError(f"{name}: not a persisted-documents manifest: {SHAPES}")
    documents = []
    for where, document in entries:
        try:
            _check_entry(document, limits)
        except DocumentRefused as error:
            raise ManifestError(f"{name}: {where}: {error}") from None
        documents.append(document)
    return Manifest(manifest_format, documents)


def _flat_format(data: dict[str, str]) -> str:
    return CODEGEN if all(is_content_hash(_relay_id(key)) for key in data) else RELAY


def _relay_id(key: str) -> str:
    try:
        return from_relay_doc_id(key)
    except DocumentRefused:
        return ""


def _flat_entries(data: dict[str, str], name: str) -> Iterator[tuple[str, Document]]:
    for key, text in data.items():
        where = f"entry {_shown(key)}"
        try:
            document_id = from_relay_doc_id(key)
        except DocumentRefused as error:
            raise ManifestError(f"{name}: {where}: {error}") from None
        yield where, Document(document_id, text)


def _apollo_entries(data: dict[str, Any], name: str) -> Iterator[tuple[str, Document]]:
    if data["format"] != APOLLO_FORMAT:
        raise ManifestError(f"{name}: unknown manifest format {_shown(data['format'])}: {SHAPES}")
    if data.get("version") != APOLLO_VERSION:
        raise ManifestError(
            f"{name}: {APOLLO_FORMAT} version {_shown(data.get('version'))} is not supported"
            f" (only version {APOLLO_VERSION})"
        )
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f'{name}: "operations" must be a list')
    if not operations:
        raise ManifestError(f"{name}: the manifest holds no documents")
    for index, operation in enumerate(operations):
        where = f"operations[{index}]"
        if not isinstance(operation, dict):
            raise ManifestError(f"{name}: {where} must be an object with id and body")
        label = operation.get("name")
        if isinstance(label, str) and label:
            plain = label.isprintable() and len(label) <= 80
            where += f" ({label if plain else _shown(label)})"
        identifier, body, kind = operation.get("id"), operation.get("body"), operation.get("type")
        if not isinstance(body, str):
            raise ManifestError(f'{name}: {where}: "body" must be a string')
        if kind is not None and kind not in OPERATION_TYPES:
            raise ManifestError(f"{name}: {where}: unknown operation type {_shown(kind)}")
        try:
            document_id = from_apq_hash(identifier)
        except DocumentRefused:
            raise ManifestError(
                f"{name}: {where}: id {_shown(identifier)} is not a sha256 hex; ids from a"
                " custom createOperationId are not supported"
            ) from None
        yield where, Document(document_id, body, label if isinstance(label, str) else None)


def _check_entry(document: Document, limits: DocumentLimits) -> None:
    check_document(document.id, document.text, limits)
    try:
        parsed = parse(document.text, no_location=True)
    except GraphQLError as error:
        reason = " ".join(error.message.splitlines())
        raise DocumentRefused(f"not GraphQL: {reason}") from None
    if not any(isinstance(node, OperationDefinitionNode) for node in parsed.definitions):
        raise DocumentRefused("the document holds no operation, only fragments")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
