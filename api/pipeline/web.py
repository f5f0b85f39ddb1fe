"""GraphQL over GET, and what HTTP caches may do with its answers.

A query sent over GET carries its request in the URL (`query`, `variables`, `extensions`,
`operationName`, or a persisted `documentId`), so browsers and CDNs can cache it. Each answer
that holds no error gets a strong ETag (a hash of its bytes: equal bytes, equal tag) and
`Cache-Control` from CACHE_MAX_AGE (0: keep, but revalidate every time), `private` when the
request carried credentials; a repeat with `If-None-Match` is answered 304 with no body.
Answers with errors are `no-store`.
"""

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import orjson

from api.pipeline.refusals import Refused, RequestCode
from api.pipeline.respond import Reply

GRAPHQL_PARAMETERS = frozenset(
    {"query", "variables", "extensions", "operationName", "documentId", "doc_id"}
)
JSON_PARAMETERS = frozenset({"variables", "extensions"})
VARY = "Accept, Authorization, Cookie"


def request_from_query_string(query_string: bytes) -> dict[str, Any] | None:
    """The GraphQL request in a GET's URL; None when it has none (a page view)."""
    if not query_string:
        return None
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Refused(RequestCode.BAD_REQUEST, "The query string is not valid UTF-8") from None
    request: dict[str, Any] = {}
    for name, value in pairs:
        if name not in GRAPHQL_PARAMETERS:
            continue
        if name in request:
            raise Refused(RequestCode.BAD_REQUEST, f"`{name}` is given more than once")
        if name in JSON_PARAMETERS:
            try:
                request[name] = orjson.loads(value) if value else None
            except orjson.JSONDecodeError:
                raise Refused(RequestCode.BAD_REQUEST, f"`{name}` is not valid JSON") from None
        else:
            request[name] = value
    return request or None


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _matches(if_none_match: str, tag: str) -> bool:
    offered = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in offered or tag in offered


def cached(
    reply: Reply, authorization: str | None, if_none_match: str | None, max_age: int
) -> Reply:
    """`reply` with its caching headers, or a 304 when the client's copy is current."""
    reply.headers["Vary"] = VARY
    if reply.status != 200 or not reply.ok:
        reply.headers["Cache-Control"] = "no-store"
        return reply
    scope = "private" if authorization else "public"
    reply.headers["Cache-Control"] = (
        f"{scope}, max-age={max_age}" if max_age > 0 else f"{scope}, no-cache"
    )
    tag = entity_tag(reply.body)
    reply.headers["ETag"] = tag
    if if_none_match is not None and _matches(if_none_match, tag):
        return Reply(304, b"", reply.content_type, True, reply.headers)
    return reply
