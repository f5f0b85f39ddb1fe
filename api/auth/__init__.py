"""Who is calling, and what they may do: service tokens, users' JWTs, scopes.

The front door builds one `Authenticator` per app and asks it, per request, for the caller
(`authenticate`) and whether that caller may run the operation (`authorize`, or the pure
functions of `api.auth.scopes`).
"""

from api.auth.authenticator import Authenticator, Forbidden, www_authenticate
from api.auth.caller import ANONYMOUS, Caller, CallerKind, Unauthenticated
from api.auth.scopes import (
    Access,
    Refusal,
    Scope,
    forbidden,
    operation_access,
    refusal,
    required_access,
)
from api.auth.service_tokens import bearer_token, token_matches

__all__ = [
    "ANONYMOUS",
    "Access",
    "Authenticator",
    "Caller",
    "CallerKind",
    "Forbidden",
    "Refusal",
    "Scope",
    "Unauthenticated",
    "bearer_token",
    "forbidden",
    "operation_access",
    "refusal",
    "required_access",
    "token_matches",
    "www_authenticate",
]
