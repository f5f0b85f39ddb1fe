"""What each operation needs from its caller: the one place the access rule is written.

Reads are open unless READS_REQUIRE_AUTH, then any authenticated caller may read. A mutation
needs a scope named by its verb: `catalog:write` to create and update, `catalog:admin` to
delete and seed (admin includes write). A mutation whose verb is not listed needs admin, so a
new kind of write is closed until someone decides otherwise.
"""

from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum
from typing import Any

from api.auth.caller import Caller


class Scope(StrEnum):
    WRITE = "catalog:write"
    ADMIN = "catalog:admin"


class Access(IntEnum):
    """What an operation needs, weakest first: a caller meeting one level meets those below."""

    ANYONE = 0
    AUTHENTICATED = 1
    WRITE = 2
    ADMIN = 3


class Refusal(StrEnum):
    """Why a caller may not run an operation: no (valid) credential, or too few scopes."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"


SERVICE_SCOPES = frozenset(Scope)
SCOPE_ACCESS = {Scope.WRITE: Access.WRITE, Scope.ADMIN: Access.ADMIN}
ACCESS_SCOPE = {access: scope for scope, access in SCOPE_ACCESS.items()}
MUTATION_VERBS = {
    "create": Access.WRITE,
    "update": Access.WRITE,
    "delete": Access.ADMIN,
    "seed": Access.ADMIN,
}
DEFAULT_SCOPE_CLAIMS = ("scope", "scp", "permissions")


def verb(field_name: str) -> str:
    """The leading lower-case word of a camelCase field name: `createBook` → `create`."""
    for index, character in enumerate(field_name):
        if not character.islower():
            return field_name[:index]
    return field_name


def required_access(
    operation_type: str, root_field: str, *, reads_require_auth: bool = False
) -> Access:
    """What one root field of an operation of `operation_type` (query, mutation,
    subscription) needs. `__typename` (and introspection) reads nothing of the catalogue."""
    reads = Access.AUTHENTICATED if reads_require_auth else Access.ANYONE
    if operation_type != "mutation" or root_field.startswith("__"):
        return reads
    return max(reads, MUTATION_VERBS.get(verb(root_field), Access.ADMIN))


def operation_access(
    operation_type: str, root_fields: Iterable[str], *, reads_require_auth: bool = False
) -> Access:
    """What an operation needs: the most any of its root fields needs."""
    return max(
        (
            required_access(operation_type, field, reads_require_auth=reads_require_auth)
            for field in root_fields
        ),
        default=Access.AUTHENTICATED if reads_require_auth else Access.ANYONE,
    )


def caller_access(caller: Caller) -> Access:
    """The most a caller may do."""
    if not caller.authenticated:
        return Access.ANYONE
    granted = [SCOPE_ACCESS[Scope(s)] for s in caller.scopes if s in SCOPE_ACCESS]
    return max(granted, default=Access.AUTHENTICATED)


def refusal(caller: Caller, needed: Access) -> Refusal | None:
    """Why `caller` may not do what needs `needed`, or None when it may."""
    if caller_access(caller) >= needed:
        return None
    return Refusal.FORBIDDEN if caller.authenticated else Refusal.UNAUTHENTICATED


def forbidden(caller: Caller, needed: Access) -> bool:
    return refusal(caller, needed) is not None


def missing_scope(needed: Access) -> Scope | None:
    """The scope a caller lacks when refused `needed` (for `WWW-Authenticate`'s scope)."""
    return ACCESS_SCOPE.get(needed)


def scopes_from_claims(claims: Mapping[str, Any], claim: str | None = None) -> frozenset[str]:
    """A token's scopes from `claim`, or by default from `scope`, else `scp` or
    `permissions`: a space-separated string (OAuth's `scope`, Azure's `scp`) or an array of
    strings (Auth0's `permissions`, Okta's `scp`). Anything else grants nothing."""
    for name in (claim,) if claim else DEFAULT_SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(item for item in value if isinstance(item, str) and item)
    return frozenset()
