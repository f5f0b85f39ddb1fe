"""Canonical document ids: each door's spelling becomes one id per document."""

import shutil
import subprocess

import pytest

from api.documents import (
    InvalidDocumentId,
    from_apq_hash,
    from_document_id,
    from_relay_doc_id,
    sha256_hex,
    sha256_id,
)
from tests.documents import NAMED, md5, sha256

# Apollo's documentation sends this hash for `{__typename}` in its APQ GET example.
APOLLO_TYPENAME_HASH = "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"


def test_sha256_is_the_hash_apollo_sends() -> None:
    assert sha256_hex("{__typename}") == APOLLO_TYPENAME_HASH
    assert sha256_id("{__typename}") == f"sha256:{APOLLO_TYPENAME_HASH}"


def test_sha256_hashes_the_utf8_bytes() -> None:
    assert sha256_hex(NAMED) == sha256(NAMED)
    assert sha256_hex(NAMED) != sha256_hex(NAMED.replace("í", "i"))


# graphql-codegen's generateDocumentHash: Node's crypto over the JavaScript string.
CODEGEN_HASH = (
    "let text = ''; process.stdin.setEncoding('utf8');"
    "process.stdin.on('data', chunk => { text += chunk; });"
    "process.stdin.on('end', () => process.stdout.write("
    "require('crypto').createHash('sha256').update(text).digest('hex')));"
)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_sha256_is_the_hash_graphql_codegen_writes() -> None:
    node = subprocess.run(
        ["node", "-e", CODEGEN_HASH],
        input=NAMED.encode(),
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert sha256_hex(NAMED) == node.stdout.decode()


def test_every_door_names_a_hashed_document_the_same_way() -> None:
    canonical = f"sha256:{APOLLO_TYPENAME_HASH}"
    assert from_document_id(canonical) == canonical
    assert from_document_id(APOLLO_TYPENAME_HASH) == canonical
    assert from_document_id(f"sha256:{APOLLO_TYPENAME_HASH.upper()}") == canonical
    assert from_apq_hash(APOLLO_TYPENAME_HASH.upper()) == canonical
    assert from_relay_doc_id(APOLLO_TYPENAME_HASH) == canonical


def test_relay_ids_that_are_not_hashes_get_their_own_namespace() -> None:
    relay_id = md5("{__typename}")
    assert from_relay_doc_id(relay_id) == f"relay:{relay_id}"
    assert from_relay_doc_id("Books_query-3.v2") == "relay:Books_query-3.v2"


@pytest.mark.parametrize(
    "value",
    [None, 7, "", "sha256:", "sha256:abc", "md5:" + "a" * 32, "g" * 64, APOLLO_TYPENAME_HASH + "0"],
)
def test_document_id_is_a_sha256(value: object) -> None:
    with pytest.raises(InvalidDocumentId, match="documentId must be sha256:"):
        from_document_id(value)


@pytest.mark.parametrize("value", [None, "", f"sha256:{APOLLO_TYPENAME_HASH}", "a" * 63, ["a"]])
def test_apq_hash_is_bare_hex(value: object) -> None:
    with pytest.raises(InvalidDocumentId, match="sha256Hash must be 64 hex digits"):
        from_apq_hash(value)


@pytest.mark.parametrize("value", [None, "", "has space", "a/b", "x" * 195, 12])
def test_relay_doc_id_is_a_short_plain_name(value: object) -> None:
    with pytest.raises(InvalidDocumentId, match="doc_id must be"):
        from_relay_doc_id(value)
