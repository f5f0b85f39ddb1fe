"""Manifests as graphql-codegen, relay-compiler and Apollo's generator write them, for tests."""

import hashlib
import json
from typing import Any

BOOKS = """query Books {
  books(first: 2) {
    edges {
      node {
        title
      }
    }
  }
}"""
AUTHORS = """query Authors {
  authors(first: 1) {
    edges {
      node {
        name
      }
    }
  }
}"""
# Not ASCII: the hash is over the UTF-8 bytes, as Node's crypto hashes a string.
NAMED = (
    'query Named {\n  authors(filter: {nameContains: "Gabriel García"}) {\n    totalCount\n  }\n}'
)
DOCUMENTS = (BOOKS, AUTHORS, NAMED)


def sha256(text: str) -> str:
    """Computed here independently of api.documents, as a client would."""
    return hashlib.sha256(text.encode()).hexdigest()


def md5(text: str) -> str:
    """relay-compiler's default id (persistConfig.algorithm MD5)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def codegen_manifest(*texts: str) -> dict[str, str]:
    return {sha256(text): text for text in texts}


def relay_manifest(*texts: str) -> dict[str, str]:
    return {md5(text): text for text in texts}


def apollo_manifest(*texts: str) -> dict[str, Any]:
    operations = [
        {"id": sha256(text), "name": text.split()[1], "type": "query", "body": text}
        for text in texts
    ]
    return {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}


def encoded(manifest: Any) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode()
