"""Manifests from graphql-codegen, Relay and Apollo: recognised, checked, refused in one line."""

from pathlib import Path
from typing import Any

import pytest

from api.documents import DocumentLimits, sha256_id
from api.documents.manifests import (
    APOLLO,
    CODEGEN,
    RELAY,
    ManifestError,
    parse_manifest,
    read_manifest,
)
from tests.documents import (
    AUTHORS,
    BOOKS,
    DOCUMENTS,
    NAMED,
    apollo_manifest,
    codegen_manifest,
    encoded,
    md5,
    relay_manifest,
    sha256,
)

LIMITS = DocumentLimits()


def parsed(manifest: Any, limits: DocumentLimits = LIMITS) -> tuple[str, dict[str, str]]:
    found = parse_manifest(encoded(manifest), limits, name="m.json")
    return found.format, {document.id: document.text for document in found.documents}


def refusal(manifest: Any, limits: DocumentLimits = LIMITS) -> str:
    raw = manifest if isinstance(manifest, bytes) else encoded(manifest)
    with pytest.raises(ManifestError) as refused:
        parse_manifest(raw, limits, name="m.json")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("m.json: ")
    return message.removeprefix("m.json: ")


def test_codegen_persisted_documents_are_stored_under_their_hashes() -> None:
    assert parsed(codegen_manifest(*DOCUMENTS)) == (
        CODEGEN,
        {sha256_id(text): text for text in DOCUMENTS},
    )


def test_relay_persisted_queries_keep_relays_ids() -> None:
    assert parsed(relay_manifest(*DOCUMENTS)) == (
        RELAY,
        {f"relay:{md5(text)}": text for text in DOCUMENTS},
    )


def test_relay_ids_under_sha256_join_the_content_hashes() -> None:
    """relay-compiler with `algorithm: "SHA256"` writes the same map codegen does."""
    assert parsed({sha256(BOOKS): BOOKS})[1] == {sha256_id(BOOKS): BOOKS}


def test_apollo_manifest_operations_are_stored_under_their_hashes() -> None:
    found = parse_manifest(encoded(apollo_manifest(*DOCUMENTS)), LIMITS, name="m.json")
    assert found.format == APOLLO
    assert [(d.id, d.text, d.name) for d in found.documents] == [
        (sha256_id(BOOKS), BOOKS, "Books"),
        (sha256_id(AUTHORS), AUTHORS, "Authors"),
        (sha256_id(NAMED), NAMED, "Named"),
    ]


def test_read_manifest_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "persisted-documents.json"
    path.write_bytes(encoded(codegen_manifest(BOOKS)))
    assert read_manifest(path, LIMITS).documents[0].id == sha256_id(BOOKS)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"^cannot read .*nope.json: No such file"):
        read_manifest(tmp_path / "nope.json", LIMITS)


def test_a_codegen_hash_that_is_not_the_texts_is_named() -> None:
    manifest = codegen_manifest(BOOKS, AUTHORS)
    wrong = sha256(BOOKS)
    manifest[wrong] = AUTHORS
    assert refusal(manifest) == (
        f"entry '{wrong}': the hash is not the text's sha256, which is {sha256(AUTHORS)}"
    )


def test_an_apollo_hash_that_is_not_the_bodys_is_named() -> None:
    manifest = apollo_manifest(BOOKS, AUTHORS)
    manifest["operations"][1]["body"] = NAMED
    assert refusal(manifest).startswith("operations[1] (Authors): the hash is not the text's")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{nope", "not JSON: unexpected character"),
        (b"", "not JSON: "),
        (b"[]", "not a persisted-documents manifest: expected {"),
        (b'{"a": 1}', "not a persisted-documents manifest"),
        (b'"query"', "not a persisted-documents manifest"),
        (b"{}", "the manifest holds no documents"),
    ],
)
def test_a_file_that_is_no_manifest_is_one_line(raw: bytes, expected: str) -> None:
    assert refusal(raw).startswith(expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"format": "relay"}, "unknown manifest format 'relay'"),
        ({"version": 2}, "apollo-persisted-query-manifest version 2 is not supported"),
        ({"operations": {}}, '"operations" must be a list'),
        ({"operations": []}, "the manifest holds no documents"),
        ({"operations": ["query A { a }"]}, "operations[0] must be an object with id and body"),
        ({"operations": [{"id": sha256(BOOKS)}]}, 'operations[0]: "body" must be a string'),
    ],
)
def test_a_malformed_apollo_manifest_is_one_line(change: dict[str, Any], expected: str) -> None:
    assert refusal({**apollo_manifest(BOOKS), **change}).startswith(expected)


def test_an_operation_name_cannot_break_the_line() -> None:
    manifest = apollo_manifest(BOOKS)
    manifest["operations"][0]["name"] = "Books\nerror: forged"
    manifest["operations"][0]["type"] = "fragment"
    assert refusal(manifest).startswith("operations[0] ('Books\\nerror: forged'): unknown")


def test_an_apollo_operation_of_unknown_type_is_named() -> None:
    manifest = apollo_manifest(BOOKS)
    manifest["operations"][0]["type"] = "fragment"
    assert refusal(manifest) == "operations[0] (Books): unknown operation type 'fragment'"


def test_apollo_ids_must_be_hashes() -> None:
    manifest = apollo_manifest(BOOKS)
    manifest["operations"][0]["id"] = "Books-v1"
    assert refusal(manifest) == (
        "operations[0] (Books): id 'Books-v1' is not a sha256 hex; ids from a custom"
        " createOperationId are not supported"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("query {", "not GraphQL: Syntax Error: Expected Name, found <EOF>."),
        ("fragment F on Author { name }", "the document holds no operation, only fragments"),
        ("   ", "the document is empty"),
    ],
)
def test_an_entry_that_is_no_document_is_named(text: str, expected: str) -> None:
    assert refusal({"abc": text}) == f"entry 'abc': {expected}"


def test_an_entry_over_the_byte_limit_is_named() -> None:
    limits = DocumentLimits(max_bytes=50)
    assert refusal(relay_manifest(BOOKS), limits) == (
        f"entry '{md5(BOOKS)}': the document is {len(BOOKS)} bytes, over the limit of 50"
        " (PERSISTED_DOCUMENTS_MAX_BYTES)"
    )


def test_a_relay_id_with_a_space_is_named() -> None:
    assert refusal({"not an id": BOOKS}).startswith("entry 'not an id': doc_id must be")
