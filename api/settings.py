"""One settings object, read from the environment and `.env`, validated at start-up."""

import dataclasses
import ipaddress
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.db.urls import DatabaseTarget, InvalidDatabaseUrl, direct_url_for, parse_database_url

MIN_PRODUCTION_TOKEN = 24
MIN_DISTINCT_CHARACTERS = 8  # "aaaa…" or "tok-aaaa…" is long but guessable
PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "secret", "token", "test", "password"})
# The persisted_documents table's own CHECK on a body (api.db.models.DOCUMENT_BODY_MAX_BYTES).
PERSISTED_DOCUMENT_CEILING = 1024 * 1024
STRONG_TOKEN_RULE = (
    f"{MIN_PRODUCTION_TOKEN}+ random characters, {MIN_DISTINCT_CHARACTERS}+ of them different"
)


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this machine, so plain http to it never crosses a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_weak_token(token: str) -> bool:
    return (
        len(token) < MIN_PRODUCTION_TOKEN
        or len(set(token)) < MIN_DISTINCT_CHARACTERS
        or token.lower() in PLACEHOLDER_TOKENS
    )


def seconds(default: float | None, description: str, *, at_most: float | None = None) -> Any:
    """A duration setting, in seconds: never zero, since a zero timeout, lag or interval
    would refuse every request or spin."""
    return Field(default=default, gt=0, le=at_most, description=description)


def byte_limit(default: int, description: str) -> Any:
    """A size limit in bytes: at least 1 KiB, so that no value refuses every request."""
    return Field(default=default, ge=1024, description=description)


class PooledMigrationTarget(ValueError):
    """Migrations were asked to run through a transaction-mode pooler."""


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = Field(
        description="Where the API connects: Neon's pooled URL in production.",
    )
    database_direct_url: str | None = Field(
        default=None,
        description="Where migrations connect; derived from DATABASE_URL when unset.",
    )
    database_pooled: bool | None = Field(
        default=None,
        description="Force pooled (transaction-mode PgBouncer) handling on or off.",
    )
    database_read_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Read replicas (Neon read-replica endpoints), comma-separated; queries "
        "read from them, mutations and reads that must see a write use DATABASE_URL.",
    )
    database_read_max_lag: float = seconds(
        5.0, "Seconds a replica may fall behind the primary before reads skip it."
    )
    database_read_poll_interval: float = seconds(
        0.15, "Seconds between reads of each replica's replayed WAL position.", at_most=5.0
    )
    api_env: Literal["development", "production"] = "development"
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_connect_timeout: float = seconds(
        15.0, "Seconds; long enough for a suspended compute to wake."
    )
    db_connect_attempts: int = Field(default=4, ge=1, description="Connect tries, with backoff.")
    db_statement_timeout: float | None = seconds(
        30.0, "Seconds one SQL statement may run; unset for none."
    )
    db_read_timeout: float | None = seconds(
        5.0, "Seconds one read statement may run before it is answered QUERY_TIMEOUT."
    )
    migrate_on_start: bool = Field(
        default=False, description="Run migrations before serving (off: use a migrate job)."
    )
    migration_lock_window: float = seconds(
        60.0, "Seconds migrate keeps retrying DDL that finds its table locked."
    )
    migration_turn_timeout: float = seconds(
        900.0, "Seconds migrate waits for another replica's run."
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Comma-separated bearer tokens for services, each with every scope "
        "(catalog:admin); when set, every mutation needs a token.",
    )
    api_open_writes: bool = Field(
        default=False,
        description="Production only: start without API_TOKEN, letting anyone write, on purpose.",
    )
    auth_jwks_url: str | None = Field(
        default=None,
        description="Where the identity provider publishes its signing keys (a JWKS): bearer "
        "JWTs it signed are accepted. Needs AUTH_ISSUER and AUTH_AUDIENCE.",
    )
    auth_issuer: str | None = Field(
        default=None, description="The `iss` every accepted JWT must carry."
    )
    auth_audience: str | None = Field(
        default=None, description="The `aud` every accepted JWT must carry (this API)."
    )
    auth_scopes_claim: str | None = Field(
        default=None,
        description="The claim holding a JWT's scopes; unset: `scope` (space-separated), "
        "else `scp` or `permissions` (arrays).",
    )
    auth_leeway: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="Seconds of clock skew allowed when checking `exp`, `nbf` and `iat`.",
    )
    auth_jwks_timeout: float = seconds(3.0, "Seconds one fetch of the JWKS may take.")
    auth_jwks_refetch_interval: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between two fetches of the JWKS: a token signed with a key we do "
        "not know triggers a fetch at most this often.",
    )
    auth_jwks_max_age: float = seconds(
        3600.0,
        "Seconds fetched keys are trusted before the JWKS is fetched again "
        "(a key the provider withdrew stops working after this long).",
    )
    reads_require_auth: bool = Field(
        default=False,
        description="Queries need a valid token (a user's JWT or API_TOKEN), not only writes.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics needs when set; production without it hides /metrics.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector traces go to; unset, nothing is traced. Every other "
        "OTEL_* variable is the OpenTelemetry SDK's own (api/observability/tracing.py).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins browsers may call from."
    )
    max_body_bytes: int = byte_limit(1024 * 1024, "Bytes a request body may have; past it, 413.")
    max_query_depth: int = Field(default=10, ge=2)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=2000, ge=100)
    max_query_cost: int = Field(
        default=20_000, ge=1, description="Objects one query may return, page sizes multiplied."
    )
    query_planner: bool = Field(
        default=True, description="Answer plannable read queries with one SQL statement."
    )
    batch_max_operations: int = Field(
        default=0, ge=0, description="Operations per batched request; 0 turns batching off."
    )
    http_body_timeout: float | None = seconds(
        30.0, "Seconds a client has to send a request's whole body."
    )
    max_document_bytes: int = byte_limit(
        64 * 1024, "Bytes a GraphQL document may have; larger ones are refused before lexing."
    )
    document_cache_bytes: int = Field(
        default=48 * 1024 * 1024,
        ge=0,
        description="Memory for parsed documents and their plans, evicted least recent first.",
    )
    repeated_request_cache_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=0,
        description="Memory for requests repeated byte for byte, kept with their bound SQL.",
    )
    new_document_bytes_per_second: int = byte_limit(
        256 * 1024, "Bytes of documents not seen before this process parses per second."
    )
    compiles_per_second: float = Field(
        default=20.0,
        gt=0,
        description="New SQL plans compiled per second; past it, the resolvers answer.",
    )
    anonymous_max_body_bytes: int = byte_limit(
        128 * 1024, "Bytes a request without credentials may send, where writes need them."
    )
    cache_max_age: int = Field(
        default=0,
        ge=0,
        description="Seconds browsers and CDNs may reuse a GET query's answer; 0: revalidate.",
    )
    idempotency_retention_hours: float = Field(
        default=24.0,
        ge=1.0,
        description="Hours an Idempotency-Key's response is kept for retries.",
    )
    live_retention_hours: float = Field(
        default=24.0,
        ge=1.0,
        description="Hours the change log keeps changes for subscriptions resuming with `after`.",
    )
    live_max_subscriptions: int = Field(
        default=20_000,
        ge=1,
        description="Subscriptions one process holds at most; more are refused (retry shortly).",
    )
    live_queue_size: int = Field(
        default=256,
        ge=1,
        description="Events one subscription may have waiting; past that it ends as SLOW_CONSUMER.",
    )
    live_poll_seconds: float = seconds(
        1.0, "How often the change log is read while the LISTEN connection is down."
    )
    live_heartbeat_seconds: float = seconds(
        15.0,
        "Seconds between heartbeats on a live connection (a WebSocket ping, an SSE comment); "
        "a WebSocket that has not answered by the next one is closed.",
    )
    live_init_timeout_seconds: float = seconds(
        10.0, "Seconds a WebSocket has to send connection_init (then closed with 4408)."
    )
    live_max_subscriptions_per_connection: int = Field(
        default=100,
        ge=1,
        description="Subscriptions one WebSocket may hold open; the next one gets an error.",
    )
    idempotency_wait: float = seconds(
        5.0, "Seconds a retry waits for the first request with its key to finish."
    )
    db_queue_limit: int = Field(
        default=50,
        ge=0,
        description="Requests that may wait for a database connection; more are shed (503).",
    )
    http_max_header_bytes: int = byte_limit(
        16 * 1024, "Bytes of one request head (request line and headers); past it, 431."
    )
    http_header_timeout: float = seconds(
        10.0, "Seconds a connection has to send a request's whole head, else it is closed."
    )
    http_keepalive_timeout: float = seconds(
        5.0, "Seconds an idle keep-alive connection stays open."
    )
    http_limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Open connections (or requests in progress) past which requests get 503.",
    )
    trusted_documents: Literal["off", "log", "require"] = Field(
        default="off",
        description="Which documents run: off (any), log (any, noting unstored ones), require "
        "(stored ones only). Unset: require in production, off in development.",
    )
    persisted_documents_max_bytes: int = Field(
        default=512 * 1024,
        ge=1,
        le=PERSISTED_DOCUMENT_CEILING,
        description="UTF-8 bytes of one persisted document (manifest or APQ).",
    )
    persisted_documents_max_count: int = Field(
        default=10_000,
        ge=0,
        description="Documents APQ may register at run time; 0 turns APQ registration off.",
    )

    @model_validator(mode="before")
    @classmethod
    def _trusted_documents_by_environment(cls, data: Any) -> Any:
        """Unset, production runs only stored documents and development runs any (README)."""
        if isinstance(data, dict) and data.get("trusted_documents") in (None, ""):
            production = str(data.get("api_env", "")).strip() == "production"
            return {**data, "trusted_documents": "require" if production else "off"}
        return data

    @field_validator("trusted_documents", mode="before")
    @classmethod
    def _lower_mode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_read_urls", mode="before")
    @classmethod
    def _split_read_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("database_read_urls")
    @classmethod
    def _read_urls_parse(cls, value: list[str]) -> list[str]:
        for position, url in enumerate(value, start=1):
            try:
                parse_database_url(url)
            except InvalidDatabaseUrl as error:
                raise ValueError(f"DATABASE_READ_URLS (URL {position}) {error}") from None
        return value

    @field_validator("auth_jwks_url", "auth_issuer", "auth_audience", "auth_scopes_claim")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @field_validator("auth_jwks_url")
    @classmethod
    def _jwks_url_is_http(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"AUTH_JWKS_URL is not an http(s) URL: {value!r}")
        return value

    @model_validator(mode="after")
    def _auth_is_whole(self) -> "Settings":
        """A JWKS without its issuer and audience would accept tokens minted for anyone."""
        jwt_settings = {
            "AUTH_JWKS_URL": self.auth_jwks_url,
            "AUTH_ISSUER": self.auth_issuer,
            "AUTH_AUDIENCE": self.auth_audience,
        }
        missing = [name for name, value in jwt_settings.items() if value is None]
        if missing and len(missing) < len(jwt_settings):
            raise ValueError(
                f"{' and '.join(missing)} not set: accepting users' JWTs needs AUTH_JWKS_URL, "
                "AUTH_ISSUER and AUTH_AUDIENCE together"
            )
        if self.reads_require_auth and not self.auth_configured:
            raise ValueError(
                "READS_REQUIRE_AUTH=true, but no caller could authenticate: set AUTH_JWKS_URL "
                "(with AUTH_ISSUER and AUTH_AUDIENCE) or API_TOKEN"
            )
        return self

    @model_validator(mode="after")
    def _production_fails_closed(self) -> "Settings":
        """Production refuses to start open to anonymous writes, with guessable tokens, or
        trusting signing keys fetched over a network in plain text."""
        if not self.production:
            return self
        if not self.auth_configured and not self.api_open_writes:
            raise ValueError(
                "API_TOKEN is not set, nor AUTH_JWKS_URL: production needs a way to authorise "
                "mutations: AUTH_JWKS_URL with AUTH_ISSUER and AUTH_AUDIENCE for users' JWTs, "
                f"or a bearer token in API_TOKEN ({STRONG_TOKEN_RULE}), or API_OPEN_WRITES=true "
                "to let anyone write"
            )
        if any(is_weak_token(token) for token in self.api_tokens):
            raise ValueError(
                f"API_TOKEN has a weak or placeholder token; in production each token needs "
                f"{STRONG_TOKEN_RULE}"
            )
        jwks = urlsplit(self.auth_jwks_url or "")
        if jwks.scheme == "http" and not is_loopback_host(jwks.hostname or ""):
            raise ValueError(
                "AUTH_JWKS_URL uses plain http: in production the signing keys must come over "
                "https (or from this machine: localhost, 127.0.0.1, ::1), or anyone on the way "
                "could swap in their own keys and sign any token"
            )
        if self.metrics_token is not None and is_weak_token(self.metrics_token_value or ""):
            raise ValueError(
                "METRICS_TOKEN is weak or a placeholder; in production it needs "
                f"{STRONG_TOKEN_RULE}"
            )
        return self

    def options(self, cls: type["Options"], **overrides: Any) -> "Options":
        """`cls` (a dataclass of `setting` fields) filled from these settings, then `overrides`."""
        values = {
            f.name: getattr(self, f.metadata[SETTING])
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if SETTING in f.metadata
        }
        return cls(**{**values, **overrides})

    @property
    def production(self) -> bool:
        return self.api_env == "production"

    @property
    def api_tokens(self) -> list[str]:
        if self.api_token is None:
            return []
        return [t.strip() for t in self.api_token.get_secret_value().split(",") if t.strip()]

    @property
    def auth_configured(self) -> bool:
        """Whether any caller can authenticate; without it (development) writes stay open."""
        return bool(self.api_tokens) or self.auth_jwks_url is not None

    @property
    def metrics_token_value(self) -> str | None:
        if self.metrics_token is None:
            return None
        return self.metrics_token.get_secret_value().strip()

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _must_parse(cls, value: str | None, info: object) -> str | None:
        if value is not None:
            try:
                parse_database_url(value)
            except InvalidDatabaseUrl as error:
                name = getattr(info, "field_name", "database_url").upper()
                raise ValueError(f"{name} {error}") from None
        return value

    @cached_property
    def database(self) -> DatabaseTarget:
        """The API's own connection target (may be pooled)."""
        return parse_database_url(self.database_url, pooled=self.database_pooled)

    @cached_property
    def read_databases(self) -> list[DatabaseTarget]:
        """The read replicas, each pooled or direct as its host says (a Neon `-pooler` host)."""
        return [parse_database_url(url) for url in self.database_read_urls]

    @cached_property
    def migration_database(self) -> DatabaseTarget:
        """The direct connection migrations use: never a transaction-mode pooler.

        A pooler hands each transaction its own server session: the advisory lock, the
        session's lock_timeout and asyncpg's prepared statements would not survive it.
        """
        if self.database_direct_url:
            return parse_database_url(self.database_direct_url, pooled=False)
        direct = direct_url_for(self.database_url)
        if direct == self.database_url and self.database.pooled:
            raise PooledMigrationTarget(
                "DATABASE_URL goes through a pooler and cannot be made direct: set"
                " DATABASE_DIRECT_URL to the database's direct connection for migrations"
            )
        return parse_database_url(direct, pooled=False)


SETTING = "setting"
Options = TypeVar("Options")


DEFAULTS = Settings.model_construct()
"""The settings as their defaults give them (nothing read, nothing validated)."""


def setting(name: str) -> Any:
    """A field of an options dataclass that mirrors the setting `name`: its default is the
    setting's default, written once in `Settings`, and `Settings.options` fills it."""
    return dataclasses.field(default=getattr(DEFAULTS, name), metadata={SETTING: name})
