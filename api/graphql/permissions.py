"""Write access: with API_TOKEN set, every mutation needs `Authorization: Bearer <token>`."""

from typing import Any

from strawberry.permission import BasePermission

from api.auth.service_tokens import bearer_token, token_matches
from api.graphql.context import Info

__all__ = ["CanWrite", "bearer_token", "token_matches"]


class CanWrite(BasePermission):
    message = "Mutations need a valid API token: send Authorization: Bearer <token>"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        accepted = info.context.settings.api_tokens
        if not accepted:
            return True
        offered = bearer_token(info.context.authorization)
        return offered is not None and token_matches(offered, accepted)
