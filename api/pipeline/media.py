"""Which media type a response is written in: the client's Accept, read as the GraphQL over
HTTP spec asks.

`application/graphql-response+json` lets a status code carry meaning (400 for a document that
does not validate, 401/403 for credentials) and is the default when Accept is missing.
`application/json` stays for clients that ask for it, and for wildcards (`*/*`, what curl and
a bare fetch send), whose clients read every answer as a 200 with a body.
"""

from enum import Enum


class Media(Enum):
    GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
    JSON = "application/json"

    @property
    def content_type(self) -> bytes:
        return (
            f"{self.value}; charset=utf-8".encode()
            if self is Media.GRAPHQL_RESPONSE_JSON
            else (b"application/json")
        )


WILDCARDS = frozenset({"*/*", "application/*"})


def negotiate(accept: str | None) -> Media | None:
    """The media type to answer in; None when the client accepts neither (406)."""
    if accept is None or not accept.strip():
        return Media.GRAPHQL_RESPONSE_JSON
    best: tuple[float, int, Media] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kind.lower()
        if quality <= 0:
            continue
        if kind == Media.GRAPHQL_RESPONSE_JSON.value:
            media = Media.GRAPHQL_RESPONSE_JSON
        elif kind == Media.JSON.value or kind in WILDCARDS:
            media = Media.JSON
        else:
            continue
        # Higher quality wins; on a tie, the earlier entry.
        candidate = (quality, -position, media)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None
