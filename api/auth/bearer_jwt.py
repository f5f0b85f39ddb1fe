"""Verification of a user's bearer JWT against the identity provider's keys.

PyJWT does the cryptography and the claim checks; this module fixes the choices a careless
call would leave open: only asymmetric algorithms (so neither `none` nor an HS256 token keyed
with our public key gets through), the key chosen by `kid` from the provider's JWKS and bound
to its own algorithm, and `exp`, `iss`, `aud` and `sub` required.
"""

from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    MissingRequiredClaimError,
    PyJWTError,
)

from api.auth.caller import Unauthenticated
from api.auth.jwks import ALLOWED_ALGORITHMS, KeyCache

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
MAX_TOKEN_CHARACTERS = 16 * 1024


@dataclass(frozen=True)
class TokenRules:
    """Whom accepted tokens must come from and be meant for, and the clock skew allowed."""

    issuer: str
    audience: str
    leeway: float


def unverified_kid(token: str) -> str:
    """The `kid` a token's header names, after refusing algorithms we never accept (before
    any key is looked up, so a forged header cannot make us fetch the JWKS)."""
    if len(token) > MAX_TOKEN_CHARACTERS:
        raise Unauthenticated(f"the token is longer than {MAX_TOKEN_CHARACTERS} characters")
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise Unauthenticated("the token is not a well-formed JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        allowed = ", ".join(ALLOWED_ALGORITHMS)
        raise Unauthenticated(f"the token's algorithm {algorithm!r} is not accepted ({allowed})")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated("the token's header names no key (kid)")
    return kid


async def verified_claims(token: str, keys: KeyCache, rules: TokenRules) -> dict[str, Any]:
    """The claims of a token whose signature, issuer, audience and times all check out."""
    key = await keys.key(unverified_kid(token))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=rules.audience,
            issuer=rules.issuer,
            leeway=rules.leeway,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except ImmatureSignatureError:
        raise Unauthenticated("the token is not valid yet") from None
    except InvalidAudienceError:
        raise Unauthenticated("the token is meant for another audience") from None
    except InvalidIssuerError:
        raise Unauthenticated("the token comes from another issuer") from None
    except MissingRequiredClaimError as error:
        raise Unauthenticated(f"the token has no {error.claim!r} claim") from None
    except PyJWTError:
        raise Unauthenticated("the token's signature or claims are not valid") from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("the token's subject (sub) is not a string")
    return claims
