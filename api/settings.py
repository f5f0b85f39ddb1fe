"""One settings object, read from the environment and `.env`, validated at start-up."""

import dataclasses
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.db.urls import DatabaseTarget, InvalidDatabaseUrl, direct_url_for, parse_database_url

MIN_PRODUCTION_TOKEN = 24
MIN_DISTINCT_CHARACTERS = 8  # "aaaa…" or "tok-aaaa…" is long but guessable
PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "secret", "token", "test", "password"})
STRONG_TOKEN_RULE = (
    f"{MIN_PRODUCTION_TOKEN}+ random characters, {MIN_DISTINCT_CHARACTERS}+ of them different"
)


def is_weak_token(token: str) -> bool:
    return (
        len(token) < MIN_PRODUCTION_TOKEN
        or len(set(token)) < MIN_DISTINCT_CHARACTERS
        or token.lower() in PLACEHOLDER_TOKENS
    )


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
    api_env: Literal["development", "production"] = "development"
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=100, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_connect_timeout: float = Field(
        default=15.0, gt=0, description="Seconds; long enough for a suspended compute to wake."
    )
    db_connect_attempts: int = Field(default=4, ge=1, description="Connect tries, with backoff.")
    db_statement_timeout: float | None = Field(
        default=30.0, gt=0, description="Seconds one SQL statement may run; unset for none."
    )
    db_read_timeout: float | None = Field(
        default=5.0,
        gt=0,
        description="Seconds one read statement may run before it is answered QUERY_TIMEOUT.",
    )
    migrate_on_start: bool = Field(
        default=False, description="Run migrations before serving (off: use a migrate job)."
    )
    migration_lock_window: float = Field(
        default=60.0,
        gt=0,
        description="Seconds migrate keeps retrying DDL that finds its table locked.",
    )
    migration_turn_timeout: float = Field(
        default=900.0, gt=0, description="Seconds migrate waits for another replica's run."
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Comma-separated bearer tokens; when set, every mutation needs one.",
    )
    api_open_writes: bool = Field(
        default=False,
        description="Production only: start without API_TOKEN, letting anyone write, on purpose.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics needs when set; production without it hides /metrics.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins browsers may call from."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
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
    http_max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Bytes of one request head (request line and headers); past it, 431.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection has to send a request's whole head, else it is closed.",
    )
    http_body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a client has to send a request's whole body."
    )
    http_keepalive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle keep-alive connection stays open."
    )
    http_limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Open connections (or requests in progress) past which requests get 503.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _production_fails_closed(self) -> "Settings":
        """Production refuses to start open to anonymous writes, or with guessable tokens."""
        if not self.production:
            return self
        if not self.api_tokens and not self.api_open_writes:
            raise ValueError(
                "API_TOKEN is not set: production needs at least one bearer token for "
                f"mutations ({STRONG_TOKEN_RULE}), or API_OPEN_WRITES=true to let anyone write"
            )
        if any(is_weak_token(token) for token in self.api_tokens):
            raise ValueError(
                f"API_TOKEN has a weak or placeholder token; in production each token needs "
                f"{STRONG_TOKEN_RULE}"
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
