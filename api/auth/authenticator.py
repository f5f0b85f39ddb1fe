"""From an Authorization header to a `Caller`, and from a caller and an operation to a
verdict: the two questions the front door asks of every request."""

from collections.abc import Iterable

import httpx

from api.auth.bearer_jwt import TokenRules, verified_claims
from api.auth.caller import ANONYMOUS, Caller, CallerKind, Unauthenticated
from api.auth.jwks import KeyCache
from api.auth.scopes import (
    SERVICE_SCOPES,
    Access,
    Refusal,
    missing_scope,
    operation_access,
    refusal,
    scopes_from_claims,
)
from api.auth.service_tokens import token_matches
from api.settings import Settings

SERVICE_SUBJECT = "service"
REALM = "catalog"


class Forbidden(Exception):
    """An authenticated caller without the scope an operation needs."""

    code = "FORBIDDEN"

    def __init__(self, needed: Access) -> None:
        scope = missing_scope(needed)
        super().__init__(
            f"This operation needs the {scope} scope" if scope else "This operation is not allowed"
        )
        self.needed = needed


def www_authenticate(error: Unauthenticated | Forbidden) -> str:
    """The `WWW-Authenticate` header (RFC 6750) for a 401 or a 403."""
    if isinstance(error, Forbidden):
        scope = missing_scope(error.needed)
        described = f', scope="{scope}"' if scope else ""
        return f'Bearer realm="{REALM}", error="insufficient_scope"{described}'
    if error.offered:
        reason = error.reason.replace("\\", "").replace('"', "'")
        return f'Bearer realm="{REALM}", error="invalid_token", error_description="{reason}"'
    return f'Bearer realm="{REALM}"'


class Authenticator:
    """Knows the service tokens and the identity provider's keys of one app.

    Built once per app (in its lifespan) and closed with it: it holds the HTTP client the
    JWKS is fetched with, and the keys' cache.
    """

    def __init__(self, settings: Settings, *, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.service_tokens = settings.api_tokens
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self.keys: KeyCache | None = None
        self.rules: TokenRules | None = None
        if settings.auth_jwks_url and settings.auth_issuer and settings.auth_audience:
            self.keys = KeyCache(
                settings.auth_jwks_url,
                self.http,
                timeout=settings.auth_jwks_timeout,
                refetch_interval=settings.auth_jwks_refetch_interval,
                max_age=settings.auth_jwks_max_age,
            )
            self.rules = TokenRules(
                settings.auth_issuer, settings.auth_audience, settings.auth_leeway
            )

    @property
    def enforcing(self) -> bool:
        """False with neither API_TOKEN nor a JWKS (development): every operation is open."""
        return self.settings.auth_configured

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller an Authorization header names.

        No header, or a scheme other than Bearer (a proxy's Basic credentials), is an
        anonymous caller. A bearer token is a service token, or else a JWT; one that is
        neither raises `Unauthenticated`, even where anonymous callers are allowed, so a
        client whose token expired learns it at once. With nothing configured to check a
        token against (development), every caller is anonymous.
        """
        if not self.enforcing or not authorization or not authorization.strip():
            return ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return ANONYMOUS
        token = token.strip()
        if not token or " " in token:
            raise Unauthenticated("the Authorization header is not `Bearer <token>`")
        if token_matches(token, self.service_tokens):
            return Caller(CallerKind.SERVICE, SERVICE_SUBJECT, SERVICE_SCOPES)
        if self.keys is None or self.rules is None:
            raise Unauthenticated("the token is not valid")
        claims = await verified_claims(token, self.keys, self.rules)
        scopes = scopes_from_claims(claims, self.settings.auth_scopes_claim)
        return Caller(CallerKind.USER, claims["sub"], scopes)

    def needed(self, operation_type: str, root_fields: Iterable[str]) -> Access:
        """What an operation needs from its caller under these settings."""
        if not self.enforcing:
            return Access.ANYONE
        return operation_access(
            operation_type, root_fields, reads_require_auth=self.settings.reads_require_auth
        )

    async def authorize(
        self, authorization: str | None, operation_type: str, root_fields: Iterable[str]
    ) -> Caller:
        """The caller, if it may run the operation; else `Unauthenticated` or `Forbidden`."""
        caller = await self.authenticate(authorization)
        needed = self.needed(operation_type, root_fields)
        verdict = refusal(caller, needed)
        if verdict is Refusal.UNAUTHENTICATED:
            raise Unauthenticated(
                "this operation needs a token: send Authorization: Bearer <token>", offered=False
            )
        if verdict is Refusal.FORBIDDEN:
            raise Forbidden(needed)
        return caller

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()
