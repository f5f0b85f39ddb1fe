"""Callers from the Authorization header: service tokens, and users' JWTs checked against a
JWKS that a stand-in identity provider serves over real HTTP (tests/identity_provider.py)."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from api.auth import (
    ANONYMOUS,
    Access,
    Authenticator,
    Caller,
    CallerKind,
    Forbidden,
    Scope,
    Unauthenticated,
    www_authenticate,
)
from api.settings import Settings
from tests.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    SigningKey,
    claims,
    forged,
    new_key,
    serving,
    sign,
)
from tests.security import WRITE_TOKEN_A

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
REFETCH_INTERVAL = 30.0
MAX_AGE = 600.0


class Clock:
    """The key cache's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def auth_settings(jwks_url: str | None, **overrides: Any) -> Settings:
    """Settings for the authenticator alone (no database is reached)."""
    jwt_settings: dict[str, Any] = (
        {"auth_jwks_url": jwks_url, "auth_issuer": ISSUER, "auth_audience": AUDIENCE}
        if jwks_url
        else {}
    )
    return Settings(
        _env_file=None,
        database_url="postgresql://catalog@127.0.0.1/unused",
        auth_jwks_refetch_interval=REFETCH_INTERVAL,
        auth_jwks_max_age=MAX_AGE,
        **{**jwt_settings, **overrides},
    )


@pytest.fixture(scope="module")
def signing_keys() -> list[SigningKey]:
    return [new_key(f"{algorithm.lower()}-1", algorithm) for algorithm in ALGORITHMS]


@pytest.fixture
def provider(signing_keys: list[SigningKey]) -> Iterator[IdentityProvider]:
    with serving(IdentityProvider(list(signing_keys))) as served:
        yield served


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def built(settings: Settings, clock: Clock) -> Authenticator:
    authenticator = Authenticator(settings)
    if authenticator.keys is not None:
        authenticator.keys.clock = clock
    return authenticator


@pytest.fixture
async def authenticator(provider: IdentityProvider, clock: Clock) -> AsyncIterator[Authenticator]:
    authenticator = await built(auth_settings(provider.url, api_token=WRITE_TOKEN_A), clock)
    yield authenticator
    await authenticator.aclose()


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def refused(authenticator: Authenticator, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as raised:
        await authenticator.authenticate(bearer(token))
    return raised.value


# Valid tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_valid_token_of_each_algorithm_is_its_user(
    authenticator: Authenticator, provider: IdentityProvider, algorithm: str
) -> None:
    token = sign(provider.key(algorithm), claims(sub=f"user-{algorithm}"))
    caller = await authenticator.authenticate(bearer(token))
    assert caller == Caller(CallerKind.USER, f"user-{algorithm}", frozenset({Scope.WRITE}))
    assert provider.fetches == 1


SCOPE_SHAPES: dict[str, tuple[dict[str, Any], str | None, frozenset[str]]] = {
    "scope, space-separated": (
        {"scope": "openid catalog:write  catalog:admin"},
        None,
        frozenset({"openid", "catalog:write", "catalog:admin"}),
    ),
    "scp, an array": ({"scope": None, "scp": ["catalog:write"]}, None, frozenset({Scope.WRITE})),
    "scp, a string (Azure)": (
        {"scope": None, "scp": "catalog:admin"},
        None,
        frozenset({Scope.ADMIN}),
    ),
    "permissions, an array": (
        {"scope": None, "permissions": ["catalog:admin", 7]},
        None,
        frozenset({Scope.ADMIN}),
    ),
    "scope before permissions": (
        {"scope": "catalog:write", "permissions": ["catalog:admin"]},
        None,
        frozenset({Scope.WRITE}),
    ),
    "no scopes": ({"scope": None}, None, frozenset()),
    "a chosen claim": (
        {"scope": "catalog:admin", "roles": ["catalog:write"]},
        "roles",
        frozenset({Scope.WRITE}),
    ),
    "a chosen claim, absent": ({"scope": "catalog:admin"}, "roles", frozenset()),
    "a claim of another type": ({"scope": {"catalog:admin": True}}, None, frozenset()),
}


@pytest.mark.parametrize(
    ("payload", "claim", "expected"), SCOPE_SHAPES.values(), ids=list(SCOPE_SHAPES)
)
async def test_scopes_come_from_each_claim_shape(
    provider: IdentityProvider,
    clock: Clock,
    payload: dict[str, Any],
    claim: str | None,
    expected: frozenset[str],
) -> None:
    authenticator = await built(auth_settings(provider.url, auth_scopes_claim=claim), clock)
    try:
        caller = await authenticator.authenticate(
            bearer(sign(provider.key("ES256"), claims(**payload)))
        )
    finally:
        await authenticator.aclose()
    assert caller.scopes == expected


async def test_a_service_token_is_the_service_with_every_scope(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    for header in (bearer(WRITE_TOKEN_A), f"bearer  {WRITE_TOKEN_A} "):
        caller = await authenticator.authenticate(header)
        assert caller == Caller(CallerKind.SERVICE, "service", frozenset(Scope))
    assert provider.fetches == 0  # a service token never needs the provider


# Forged and unacceptable tokens ---------------------------------------------------------------


async def test_alg_none_is_refused_without_asking_the_provider(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    token = forged({"alg": "none", "kid": "rs256-1", "typ": "JWT"}, claims(), None)
    error = await refused(authenticator, token)
    assert "'none' is not accepted" in error.reason
    assert provider.fetches == 0


async def test_hs256_keyed_with_the_public_key_is_refused(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    """The classic confusion: an HMAC token whose secret is the RSA public key's PEM, which
    a verifier that let the token choose its algorithm would accept."""
    rsa_key = provider.key("RS256")
    for secret in (rsa_key.public_pem, rsa_key.public_pem.strip()):
        token = forged({"alg": "HS256", "kid": rsa_key.kid, "typ": "JWT"}, claims(), secret)
        error = await refused(authenticator, token)
        assert "'HS256' is not accepted" in error.reason
    assert provider.fetches == 0


async def test_a_token_whose_algorithm_is_not_its_keys_is_refused(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    """Signed with the EC key but naming the RSA key: the key's own algorithm decides."""
    token = sign(provider.key("ES256"), claims(), kid=provider.key("RS256").kid)
    error = await refused(authenticator, token)
    assert error.reason == "the token's signature or claims are not valid"


async def test_a_tampered_token_is_refused(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    token = sign(provider.key("EdDSA"), claims(scope="catalog:write"))
    header, _, rest = token.partition(".")
    _, _, signature = rest.partition(".")
    other = sign(provider.key("EdDSA"), claims(scope="catalog:admin")).split(".")[1]
    error = await refused(authenticator, f"{header}.{other}.{signature}")
    assert error.reason == "the token's signature or claims are not valid"


BAD_CLAIMS: dict[str, tuple[dict[str, Any], str]] = {
    "expired": ({"exp": int(time.time()) - 120}, "the token has expired"),
    "not yet valid (nbf)": ({"nbf": int(time.time()) + 120}, "the token is not valid yet"),
    "issued in the future (iat)": ({"iat": int(time.time()) + 120}, "the token is not valid yet"),
    "wrong audience": ({"aud": "https://other.example"}, "the token is meant for another audience"),
    "wrong audience among several": (
        {"aud": ["https://other.example", "https://third.example"]},
        "the token is meant for another audience",
    ),
    "wrong issuer": ({"iss": "https://evil.example/"}, "the token comes from another issuer"),
    "no exp": ({"exp": None}, "the token has no 'exp' claim"),
    "no aud": ({"aud": None}, "the token has no 'aud' claim"),
    "no iss": ({"iss": None}, "the token has no 'iss' claim"),
    "no sub": ({"sub": None}, "the token has no 'sub' claim"),
    "a sub that is not a string": ({"sub": 42}, "the token's signature or claims are not valid"),
}


@pytest.mark.parametrize(("overrides", "reason"), BAD_CLAIMS.values(), ids=list(BAD_CLAIMS))
@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
async def test_tokens_with_bad_claims_are_refused(
    authenticator: Authenticator,
    provider: IdentityProvider,
    algorithm: str,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    error = await refused(authenticator, sign(provider.key(algorithm), claims(**overrides)))
    assert error.reason == reason
    assert error.offered


async def test_the_leeway_forgives_a_little_clock_skew(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    """AUTH_LEEWAY is 30 s: ten seconds past `exp` or before `nbf` still pass."""
    now = int(time.time())
    for skewed in (claims(exp=now - 10), claims(nbf=now + 10, iat=now + 10)):
        caller = await authenticator.authenticate(bearer(sign(provider.key("RS256"), skewed)))
        assert caller.subject == "user-1"


async def test_an_audience_list_holding_ours_is_accepted(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    token = sign(provider.key("RS256"), claims(aud=["https://other.example", AUDIENCE]))
    assert (await authenticator.authenticate(bearer(token))).kind is CallerKind.USER


MALFORMED = {
    "bare scheme": "Bearer",
    "empty token": "Bearer   ",
    "two words": "Bearer abc def",
    "not a JWT": "Bearer not-a-jwt",
    "three dots of nothing": "Bearer ..",
    "a wrong service token": "Bearer tok-cccccccccccccccccccccccccccc",
    "too long": "Bearer " + "a" * 20_000,
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=list(MALFORMED))
async def test_malformed_bearer_headers_are_refused(
    authenticator: Authenticator, provider: IdentityProvider, header: str
) -> None:
    with pytest.raises(Unauthenticated):
        await authenticator.authenticate(header)
    assert provider.fetches == 0


@pytest.mark.parametrize("header", [None, "", "  ", "Basic dXNlcjpwYXNz", "Token abc"])
async def test_no_bearer_token_is_an_anonymous_caller(
    authenticator: Authenticator, header: str | None
) -> None:
    """Another scheme (a proxy's Basic credentials) is not ours to judge."""
    assert await authenticator.authenticate(header) == ANONYMOUS


# The key cache ----------------------------------------------------------------------------------


async def test_an_unknown_kid_refetches_at_most_once_per_interval(
    authenticator: Authenticator, provider: IdentityProvider, clock: Clock
) -> None:
    stranger = new_key("stranger", "ES256")
    known = sign(provider.key("RS256"), claims())
    await authenticator.authenticate(bearer(known))
    assert provider.fetches == 1
    clock.now += REFETCH_INTERVAL  # long enough after the first fetch

    for _ in range(5):
        error = await refused(authenticator, sign(stranger, claims()))
        assert error.reason == "the token is signed with a key this API does not know"
    assert provider.fetches == 2  # the first unknown kid asked once; the rest waited

    clock.now += REFETCH_INTERVAL - 1
    await refused(authenticator, sign(stranger, claims(), kid="another-stranger"))
    assert provider.fetches == 2
    clock.now += 1
    await refused(authenticator, sign(stranger, claims()))
    assert provider.fetches == 3
    assert (await authenticator.authenticate(bearer(known))).subject == "user-1"
    assert provider.fetches == 3


async def test_a_rotated_key_is_picked_up_and_a_withdrawn_one_expires(
    authenticator: Authenticator, provider: IdentityProvider, clock: Clock
) -> None:
    old = provider.key("RS256")
    await authenticator.authenticate(bearer(sign(old, claims())))
    assert provider.fetches == 1

    rotated = new_key("rs256-2", "RS256")
    provider.publish(old, rotated)
    clock.now += REFETCH_INTERVAL
    caller = await authenticator.authenticate(bearer(sign(rotated, claims(sub="after"))))
    assert caller.subject == "after"
    assert provider.fetches == 2

    provider.publish(rotated)  # the old key withdrawn
    clock.now += MAX_AGE - 1
    assert (await authenticator.authenticate(bearer(sign(old, claims())))).kind is CallerKind.USER
    clock.now += 1  # the keys are now as old as AUTH_JWKS_MAX_AGE: fetched again on next use
    error = await refused(authenticator, sign(old, claims()))
    assert error.reason == "the token is signed with a key this API does not know"
    assert provider.fetches == 3


async def test_concurrent_requests_share_one_fetch(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    tokens = [sign(provider.key(a), claims(sub=f"user-{i}")) for i, a in enumerate(ALGORITHMS * 7)]
    callers = await asyncio.gather(*(authenticator.authenticate(bearer(t)) for t in tokens))
    assert [c.subject for c in callers] == [f"user-{i}" for i in range(len(tokens))]
    assert provider.fetches == 1


async def test_a_provider_that_is_down_makes_tokens_unauthenticated_and_is_logged_once(
    signing_keys: list[SigningKey], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    provider = IdentityProvider(list(signing_keys))
    with serving(provider):
        url = provider.url
    authenticator = await built(auth_settings(url), clock)  # the port is closed now
    token = sign(provider.key("RS256"), claims())
    try:
        with caplog.at_level(logging.ERROR, logger="api.auth.jwks"):
            for _ in range(3):
                error = await refused(authenticator, token)
                assert error.reason == (
                    "the token's signing keys could not be loaded; try again later"
                )
                clock.now += REFETCH_INTERVAL
        assert authenticator.keys is not None
        assert authenticator.keys.fetches == 3
        failures = [r for r in caplog.records if r.name == "api.auth.jwks"]
        assert len(failures) == 1, failures
        assert "could not be loaded" in failures[0].getMessage()
        assert "ConnectError" in failures[0].getMessage()
    finally:
        await authenticator.aclose()


async def test_a_stalled_provider_is_given_up_on_after_the_fetch_timeout(
    provider: IdentityProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    provider.delay = 1.0
    authenticator = await built(auth_settings(provider.url, auth_jwks_timeout=0.1), clock)
    try:
        with caplog.at_level(logging.ERROR, logger="api.auth.jwks"):
            error = await refused(authenticator, sign(provider.key("RS256"), claims()))
        assert error.reason == "the token's signing keys could not be loaded; try again later"
        (logged,) = [r.getMessage() for r in caplog.records if r.name == "api.auth.jwks"]
        assert "no answer within 0.1 s" in logged
    finally:
        await authenticator.aclose()


async def test_keys_outlive_an_outage_once_loaded(
    signing_keys: list[SigningKey], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Past AUTH_JWKS_MAX_AGE with the provider down, the keys already held keep serving."""
    provider = IdentityProvider(list(signing_keys))
    token = sign(provider.key("ES256"), claims())
    with serving(provider):
        authenticator = await built(auth_settings(provider.url), clock)
        assert (await authenticator.authenticate(bearer(token))).kind is CallerKind.USER
    try:
        clock.now += MAX_AGE
        with caplog.at_level(logging.ERROR, logger="api.auth.jwks"):
            assert (await authenticator.authenticate(bearer(token))).kind is CallerKind.USER
        assert authenticator.keys is not None
        assert authenticator.keys.fetches == 2
        assert [r.name for r in caplog.records].count("api.auth.jwks") == 1
    finally:
        await authenticator.aclose()


async def test_a_jwks_without_usable_keys_refuses_every_token(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    """Keys for encryption, without a kid, or of a refused algorithm are never used."""
    rsa_key = provider.key("RS256")
    provider.published = [
        {**rsa_key.jwk, "use": "enc"},
        {k: v for k, v in provider.key("ES256").jwk.items() if k != "kid"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {**provider.key("EdDSA").jwk, "alg": "RS512"},
        "not a key",
    ]
    for key, kid in ((rsa_key, rsa_key.kid), (rsa_key, "hmac"), (provider.key("EdDSA"), None)):
        error = await refused(authenticator, sign(key, claims(), kid=kid))
        assert error.reason == "the token is signed with a key this API does not know"


# Access ---------------------------------------------------------------------------------------


async def test_authorize_tells_unauthenticated_from_forbidden(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    writer = bearer(sign(provider.key("RS256"), claims(scope="catalog:write")))
    admin = bearer(sign(provider.key("RS256"), claims(scope="catalog:admin")))
    reader = bearer(sign(provider.key("RS256"), claims(scope="openid")))

    with pytest.raises(Unauthenticated) as anonymous:
        await authenticator.authorize(None, "mutation", ["createBook"])
    assert not anonymous.value.offered
    assert www_authenticate(anonymous.value) == 'Bearer realm="catalog"'

    with pytest.raises(Forbidden) as writer_deleting:
        await authenticator.authorize(writer, "mutation", ["createBook", "deleteBook"])
    assert writer_deleting.value.needed is Access.ADMIN
    assert str(writer_deleting.value) == "This operation needs the catalog:admin scope"
    assert www_authenticate(writer_deleting.value) == (
        'Bearer realm="catalog", error="insufficient_scope", scope="catalog:admin"'
    )
    with pytest.raises(Forbidden):
        await authenticator.authorize(reader, "mutation", ["updateAuthor"])

    assert (await authenticator.authorize(writer, "mutation", ["updateAuthor"])).subject
    assert (await authenticator.authorize(admin, "mutation", ["seedCatalog"])).subject
    assert await authenticator.authorize(None, "query", ["books"]) == ANONYMOUS
    service = await authenticator.authorize(bearer(WRITE_TOKEN_A), "mutation", ["deleteAuthor"])
    assert service.kind is CallerKind.SERVICE


async def test_an_invalid_token_is_described_in_www_authenticate(
    authenticator: Authenticator, provider: IdentityProvider
) -> None:
    error = await refused(authenticator, sign(provider.key("ES256"), claims(aud="x")))
    assert www_authenticate(error) == (
        'Bearer realm="catalog", error="invalid_token", '
        'error_description="the token is meant for another audience"'
    )


async def test_reads_may_require_a_caller(provider: IdentityProvider, clock: Clock) -> None:
    authenticator = await built(auth_settings(provider.url, reads_require_auth=True), clock)
    token = bearer(sign(provider.key("EdDSA"), claims(scope=None)))
    try:
        with pytest.raises(Unauthenticated):
            await authenticator.authorize(None, "query", ["authors"])
        caller = await authenticator.authorize(token, "query", ["authors", "__typename"])
        assert caller.scopes == frozenset()
        with pytest.raises(Forbidden):
            await authenticator.authorize(token, "mutation", ["createAuthor"])
    finally:
        await authenticator.aclose()


async def test_with_nothing_configured_every_caller_is_anonymous_and_may_write(
    clock: Clock,
) -> None:
    """Development without API_TOKEN or a JWKS keeps writes open, as before."""
    authenticator = await built(auth_settings(None), clock)
    try:
        assert not authenticator.enforcing
        for header in (None, "Bearer whatever", bearer(WRITE_TOKEN_A)):
            caller = await authenticator.authorize(header, "mutation", ["deleteAuthor"])
            assert caller == ANONYMOUS
    finally:
        await authenticator.aclose()


async def test_service_tokens_alone_refuse_jwts(provider: IdentityProvider, clock: Clock) -> None:
    authenticator = await built(auth_settings(None, api_token=WRITE_TOKEN_A), clock)
    try:
        assert authenticator.enforcing
        with pytest.raises(Unauthenticated):
            await authenticator.authenticate(bearer(sign(provider.key("RS256"), claims())))
        assert provider.fetches == 0
    finally:
        await authenticator.aclose()
