"""The Authorization header's bearer token, and API_TOKEN's tokens compared without leaks."""

import hmac


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Bearer <token>` (scheme in any case); None for anything else."""
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
