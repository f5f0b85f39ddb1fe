"""Why a connection to the database failed, in a few words a person can act on.

Drivers report a failed connect as a socket error several wrappers deep (SQLAlchemy, Alembic,
the retry loop), with the host nowhere in it; these helpers find the cause in the chain.
"""

import errno
import socket
import ssl
from collections.abc import Iterator

import asyncpg

# A name the resolver says does not exist: asking again will not make it exist.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)
_NETWORK_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}
# The server answered, and said no: wrong password, unknown database, not ready, full.
_REFUSALS = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it wraps: explicit causes, implicit contexts and DBAPI `orig`s."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [
            current.__cause__,
            current.__context__,
            orig if isinstance(orig, BaseException) else None,
        ]


def is_permanent(error: BaseException) -> bool:
    """A failure that retrying cannot fix (the host name does not exist)."""
    return any(
        isinstance(cause, socket.gaierror) and cause.errno in _NO_SUCH_NAME
        for cause in causes(error)
    )


def connect_failure(error: BaseException, host: str) -> str | None:
    """ "cannot reach HOST: <cause>" or "HOST refused the connection: <reason>", or None
    when `error` is not about connecting."""
    for cause in causes(error):
        if isinstance(cause, socket.gaierror):
            return f"cannot reach {host}: DNS lookup failed"
        if isinstance(cause, TimeoutError):
            return f"cannot reach {host}: timed out"
        if isinstance(cause, ssl.SSLError):
            return f"cannot reach {host}: TLS failed ({cause.reason or cause})"
        if isinstance(cause, OSError) and cause.errno in _NETWORK_ERRORS:
            return f"cannot reach {host}: {_NETWORK_ERRORS[cause.errno]}"
        if isinstance(cause, FileNotFoundError) and host.startswith("/"):
            return f"cannot reach {host}: no server is listening on that socket"
        if isinstance(cause, _REFUSALS):
            return f"{host} refused the connection: {str(cause).splitlines()[0]}"
    return None


def host_of(host: object, port: object) -> str:
    """How a person would name the server: `host`, or `host:port` when a port was given."""
    name = str(host or "localhost")
    if isinstance(host, list | tuple):
        name = ",".join(str(h) for h in host)
    return f"{name}:{port}" if port and not name.startswith("/") else name
