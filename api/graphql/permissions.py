"""Write access: with API_TOKEN set, every mutation needs `Authorization: Bearer <token>`."""

import hmac
from typing import Any

from strawberry.permission import BasePermission

from api.graphql.context import Info


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_matches(offered: str, accepted: list[str]) -> bool:
    """Constant-time comparison against every accepted token, so timing reveals nothing."""
    offered_bytes = offered.encode()
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(offered_bytes, token.encode())
    return matched


class CanWrite(BasePermission):
    message = "Mutations need a valid API token: send Authorization: Bearer <token>"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        accepted = info.context.settings.api_tokens
        if not accepted:
            return True
        offered = bearer_token(info.context.authorization)
        return offered is not None and token_matches(offered, accepted)
