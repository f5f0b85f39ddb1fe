"""Who sent a request, as its headers say: the client's name and version, and its own id.

Apollo Client sends `apollographql-client-name` and `-version` (its "client awareness"),
other clients `graphql-client-name` and `-version`. A client's `X-Request-ID` is never the
request's id (the server always makes its own: a client's could repeat another request's);
a well-formed one is logged beside it, so a client can find its request in the logs.
"""

import re
from dataclasses import dataclass

# 1 to 64 letters, digits, dots, underscores and hyphens: UUIDs, ULIDs, trace ids, and
# nothing that could break a log line or pass for another field.
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_NAME, _VERSION, _REQUEST_ID = 0, 1, 2
_HEADERS = {
    b"apollographql-client-name": _NAME,
    b"graphql-client-name": _NAME,
    b"apollographql-client-version": _VERSION,
    b"graphql-client-version": _VERSION,
    b"x-request-id": _REQUEST_ID,
}


@dataclass(frozen=True, slots=True)
class Client:
    name: str | None = None
    version: str | None = None
    request_id: str | None = None  # the client's own X-Request-ID, when well-formed


NO_CLIENT = Client()


def client_of(headers: list[tuple[bytes, bytes]]) -> Client:
    """The client named in an ASGI scope's headers (the first of each kind counts)."""
    found: list[str | None] = [None, None, None]
    for header, value in headers:
        kind = _HEADERS.get(header)
        if kind is not None and found[kind] is None:
            found[kind] = value.decode("latin-1")
    if found == [None, None, None]:
        return NO_CLIENT
    name, version, request_id = found
    if request_id is not None and not CLIENT_REQUEST_ID.fullmatch(request_id):
        request_id = None
    return Client(name or None, version or None, request_id)
