"""Each request's id: made by the server, read by logs and error bodies, sent as X-Request-ID.

The server always makes the id: a client's X-Request-ID could repeat another request's. A
well-formed client id is logged beside ours (`api.observability.clients`).
"""

import itertools
import secrets
from collections.abc import Callable
from contextvars import ContextVar

from starlette.types import Message

HEADER = b"x-request-id"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being served, None outside one."""

UUID_BITS = 2**128 - 1
VERSION_BITS, VERSION_4 = 0xF000 << 64, 4 << 76
VARIANT_BITS, VARIANT_RFC_4122 = 0xC000 << 48, 0x8000 << 48


def request_ids() -> Callable[[], str]:
    """Unique version-4 UUIDs without a system call each: a random start, then a counter.

    uuid4() reads the kernel's random source per request, a visible cost at thousands of
    requests per second; a request id only needs to be unique, not unguessable.
    """
    start = secrets.randbits(128)
    counter = itertools.count()

    def next_id() -> str:
        # What uuid.UUID(int=..., version=4).hex gives, without building the object.
        value = (start + next(counter)) & UUID_BITS & ~VERSION_BITS & ~VARIANT_BITS
        return f"{value | VERSION_4 | VARIANT_RFC_4122:032x}"

    return next_id


def with_request_id(start: Message, value: str) -> None:
    """Adds the X-Request-ID header to an `http.response.start` message."""
    headers = start.get("headers")
    if not isinstance(headers, list):
        headers = start["headers"] = list(headers or ())
    headers.append((HEADER, value.encode("ascii")))
