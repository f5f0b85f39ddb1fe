"""What a transport (WebSocket or SSE) needs from the live service, and nothing more.

A transport reads the client's subscribe request, opens it here (the same front door as a
query: document, auth, cost, limits), forwards each payload as it comes, and closes it when
the client goes. Why a stream ended decides how the transport says goodbye.
"""

from enum import Enum
from typing import Any, Protocol


class Ended(Enum):
    """Why a subscription stopped sending."""

    COMPLETE = "complete"  # nothing more will come (an error payload may have been the last)
    SHUTDOWN = "shutdown"  # the process is stopping: resume elsewhere (WebSocket close 1001)
    SLOW_CONSUMER = "slow_consumer"  # its queue overflowed: resume with `after` (close 1013)


class Subscription(Protocol):
    """One running subscription."""

    ended: Ended | None

    async def next(self) -> bytes | None:
        """The JSON of the next execution result (`{"data": ...}` or `{"errors": [...]}`),
        or None once the stream has ended (`ended` says why)."""
        ...

    async def close(self) -> None:
        """Stop it (the client completed it or went away); idempotent."""
        ...


class Live(Protocol):
    """Opens subscriptions; raises `api.pipeline.refusals.Refused` for a request the front
    door refuses (bad document, not a subscription, unauthorised, too costly, too many)."""

    async def open(self, request: dict[str, Any], authorization: str | None) -> Subscription: ...

    async def shutdown(self) -> None:
        """End every subscription with `Ended.SHUTDOWN` (SIGTERM)."""
        ...
