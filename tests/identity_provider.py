"""A stand-in identity provider for tests: its own keys, a JWKS served over real HTTP on
127.0.0.1 (a kernel-picked port, a thread of its own), and tokens signed as a real one would.

The server counts the JWKS fetches it answers, can publish a new key set (rotation), and can
stop answering (an outage), so tests assert what the API did, not how long it took.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://id.example/"
AUDIENCE = "https://catalog.example/graphql"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str  # RS256, ES256 or EdDSA
    private: PrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        family: Any = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}
        document: dict[str, Any] = family[self.algorithm].to_jwk(public, as_dict=True)
        return {**document, "kid": self.kid, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(kid: str, algorithm: str) -> SigningKey:
    private: PrivateKey
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid, algorithm, private)


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid token's claims for user-1, good for five minutes; `None` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "scope": "catalog:write",
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], *, kid: str | None = None) -> str:
    return jwt.encode(
        payload, key.private, algorithm=key.algorithm, headers={"kid": kid or key.kid}
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none`, or HS256 keyed with `secret`."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


@dataclass
class IdentityProvider:
    """The keys it signs with, the keys it publishes, and how often it was asked for them."""

    keys: list[SigningKey]
    published: list[Any] = field(default_factory=list)  # what the JWKS holds, keys or not
    fetches: int = 0
    url: str = ""
    delay: float = 0.0  # seconds each answer waits before its first byte (a stalled provider)

    def __post_init__(self) -> None:
        self.publish(*self.keys)

    def publish(self, *keys: SigningKey) -> None:
        self.published = [key.jwk for key in keys]

    def key(self, algorithm: str) -> SigningKey:
        return next(k for k in self.keys if k.algorithm == algorithm)


@contextmanager
def serving(provider: IdentityProvider) -> Iterator[IdentityProvider]:
    """`provider` with its JWKS at `provider.url` until the block ends (then the port is
    closed, which is also how a test makes the provider go down)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            time.sleep(provider.delay)
            body = json.dumps({"keys": provider.published}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
