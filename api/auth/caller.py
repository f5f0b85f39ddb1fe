"""Who sent a request, as the rest of the service needs to know it."""

from dataclasses import dataclass
from enum import StrEnum


class CallerKind(StrEnum):
    ANONYMOUS = "anonymous"
    SERVICE = "service"  # a holder of one of the API_TOKEN tokens
    USER = "user"  # a JWT signed by the identity provider


@dataclass(frozen=True)
class Caller:
    """The authenticated party of a request.

    `subject` is what idempotency keys and logs are scoped by: a JWT's `sub`, "service" for
    every API_TOKEN token (they are one credential), None for anonymous callers. `scopes` are
    the token's scopes as written, ours or not.
    """

    kind: CallerKind
    subject: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def authenticated(self) -> bool:
        return self.kind is not CallerKind.ANONYMOUS


ANONYMOUS = Caller(CallerKind.ANONYMOUS)


class Unauthenticated(Exception):
    """No credential where one is needed, or one that cannot be trusted: malformed, badly
    signed, expired, for another audience, or whose signing keys could not be loaded. The
    message is for the client; it says what is wrong with the token, never what the server
    holds."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str, *, offered: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offered = offered  # False: no credential was sent where one is needed
