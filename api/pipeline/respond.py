"""The HTTP answer: status, media type and headers, written once for every executor."""

from dataclasses import dataclass, field

import orjson
from starlette.types import Send

from api.pipeline.media import Media
from api.pipeline.refusals import Refused

CHUNK = 64 * 1024


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: bytes
    ok: bool = True  # no error anywhere in the body: the only answers a cache may keep
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def graphql(cls, body: bytes, media: Media, *, ok: bool) -> "Reply":
        """An executed operation's response: 200, whether or not fields failed."""
        return cls(200, body, media.content_type, ok)

    @classmethod
    def refused(cls, refused: Refused, media: Media, status: int) -> "Reply":
        body = orjson.dumps({"errors": refused.errors})
        return cls(status, body, media.content_type, False, dict(refused.headers))

    @classmethod
    def not_acceptable(cls) -> "Reply":
        message = (
            "This endpoint answers application/graphql-response+json or application/json; "
            "send an Accept header that allows one"
        )
        body = orjson.dumps(
            {"errors": [{"message": message, "extensions": {"code": "NOT_ACCEPTABLE"}}]}
        )
        return cls(406, body, Media.JSON.content_type, False)


async def send_reply(send: Send, reply: Reply) -> None:
    if reply.status == 304:  # not modified: headers only
        headers = [
            (name.lower().encode(), value.encode("latin-1"))
            for name, value in reply.headers.items()
        ]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if not reply.ok and "Cache-Control" not in reply.headers:
        reply.headers["Cache-Control"] = "no-store"
    headers = [
        (b"content-type", reply.content_type),
        (b"content-length", str(len(reply.body)).encode()),
        *(
            (name.lower().encode(), value.encode("latin-1"))
            for name, value in reply.headers.items()
        ),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    body = reply.body
    if len(body) <= CHUNK:
        await send({"type": "http.response.body", "body": body})
        return
    # Large bodies go out in chunks: the server waits for the socket to drain between them,
    # so it never holds a second copy of a big response in its write buffer.
    for start in range(0, len(body), CHUNK):
        more = start + CHUNK < len(body)
        await send(
            {"type": "http.response.body", "body": body[start : start + CHUNK], "more_body": more}
        )
