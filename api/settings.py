"""One settings object, read from the environment and `.env`, validated at start-up."""

from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.db.engine import EngineOptions
from api.db.urls import DatabaseTarget, InvalidDatabaseUrl, direct_url_for, parse_database_url


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
    migrate_on_start: bool = Field(
        default=False, description="Run migrations before serving (off: use a migrate job)."
    )

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

    def engine_options(self) -> EngineOptions:
        return EngineOptions(
            pool_size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            connect_timeout=self.db_connect_timeout,
            connect_attempts=self.db_connect_attempts,
            statement_timeout=self.db_statement_timeout,
        )

    @cached_property
    def database(self) -> DatabaseTarget:
        """The API's own connection target (may be pooled)."""
        return parse_database_url(self.database_url, pooled=self.database_pooled)

    @cached_property
    def migration_database(self) -> DatabaseTarget:
        """The direct connection migrations use: never a transaction-mode pooler."""
        if self.database_direct_url:
            return parse_database_url(self.database_direct_url, pooled=False)
        return parse_database_url(direct_url_for(self.database_url), pooled=False)
