"""The identity provider's signing keys (its JWKS), fetched over HTTP and cached by `kid`.

A token signed with a key we have not seen makes us fetch the JWKS again (the provider
rotated its keys), but at most once per `refetch_interval`, so a stream of tokens with made-up
`kid`s costs the provider one request per interval. Keys older than `max_age` are fetched
again on their next use, so a key the provider withdrew stops being trusted; if that fetch
fails the old keys keep serving (the provider being down is no reason to refuse every user).
A JWKS that cannot be loaded is logged once, until it loads again.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from api.auth.caller import Unauthenticated

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256", "EdDSA")
"""Asymmetric only: an HMAC algorithm would let anyone holding the public key sign."""
MAX_JWKS_BYTES = 256 * 1024


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or read; the message says why, for the log."""


def usable_keys(document: Any) -> dict[str, PyJWK]:
    """The signing keys of a JWKS document by `kid`, keeping only keys of an allowed
    algorithm; keys for encryption, without a `kid`, or that do not parse are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable('the JWKS is not a JSON object with a "keys" array')
    keys: dict[str, PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = PyJWK(entry)
        except PyJWTError:
            continue
        if key.algorithm_name in ALLOWED_ALGORITHMS:
            keys[kid] = key
    return keys


@dataclass
class KeyCache:
    """Keys by `kid` from the JWKS at `url`; one fetch at a time, whoever asks."""

    url: str
    http: httpx.AsyncClient
    timeout: float
    refetch_interval: float
    max_age: float
    clock: Callable[[], float] = time.monotonic
    fetches: int = 0  # attempts, successful or not
    _keys: dict[str, PyJWK] = field(default_factory=dict)
    _fetched_at: float | None = None  # the last successful fetch
    _attempted_at: float | None = None
    _failing: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def key(self, kid: str) -> PyJWK:
        """The key `kid` names; `Unauthenticated` if the JWKS does not hold it."""
        if kid not in self._keys or self._stale():
            async with self._lock:  # a second caller waits for the first's fetch
                if (kid not in self._keys or self._stale()) and self._may_fetch():
                    await self._refresh()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._failing and not self._keys:
            raise Unauthenticated("the token's signing keys could not be loaded; try again later")
        raise Unauthenticated("the token is signed with a key this API does not know")

    def _stale(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= self.max_age

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None or self.clock() - self._attempted_at >= self.refetch_interval
        )

    async def _refresh(self) -> None:
        self._attempted_at = self.clock()
        self.fetches += 1
        try:
            keys = usable_keys(await self._download())
        except JwksUnavailable as error:
            if not self._failing:
                log.error("the JWKS at %s could not be loaded: %s", self.url, error)
            self._failing = True
            return
        if self._failing:
            log.warning("the JWKS at %s loads again", self.url)
        self._keys, self._fetched_at, self._failing = keys, self.clock(), False

    async def _download(self) -> Any:
        """The JWKS document, within `timeout` seconds in all (httpx's own timeouts are per
        read, so a server trickling bytes would outlast them)."""
        body = bytearray()
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.http.stream("GET", self.url, timeout=self.timeout) as response,
            ):
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable(f"larger than {MAX_JWKS_BYTES} bytes")
        except TimeoutError:
            raise JwksUnavailable(f"no answer within {self.timeout} s") from None
        except httpx.HTTPError as error:
            raise JwksUnavailable(f"{type(error).__name__}: {error}") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise JwksUnavailable("the body is not JSON") from None
