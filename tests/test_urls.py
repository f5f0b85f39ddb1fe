"""Connection strings as people paste them, translated for asyncpg; and the settings built on them.

All but the last tests are pure: no database. The last ones prove asyncpg accepts the result.
"""

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.engine import connect_args_for
from api.db.urls import DatabaseTarget, InvalidDatabaseUrl, direct_url_for, parse_database_url
from api.settings import PooledMigrationTarget, Settings

NEON_POOLED = (
    "postgresql://user:pass@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)
NEON_DIRECT_HOST = "ep-cool-darkness-123456.us-east-2.aws.neon.tech"


def settings(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    """Settings from exactly these environment variables (no `.env`, no inherited DATABASE_*)."""
    for name in ("DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_POOLED", "API_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def refusal(raw: str) -> str:
    with pytest.raises(InvalidDatabaseUrl) as caught:
        parse_database_url(raw)
    message = str(caught.value)
    assert message.strip()
    return message


# --- parse_database_url -------------------------------------------------------------------


def test_neon_console_url_is_translated_for_asyncpg() -> None:
    target = parse_database_url(NEON_POOLED)

    assert target.url.drivername == "postgresql+asyncpg"
    assert dict(target.url.query) == {}
    assert "?" not in target.url.render_as_string(hide_password=False)
    assert (target.url.username, target.url.password) == ("user", "pass")
    assert target.url.host == "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"
    assert target.url.database == "neondb"
    assert target.connect_args == {"ssl": "require"}
    assert target.pooled is True
    assert target.host == target.url.host


def test_render_hides_the_password() -> None:
    rendered = parse_database_url("postgresql://user:s3cr3t-pw@db.example.com/app").render()
    assert "s3cr3t-pw" not in rendered
    assert "db.example.com/app" in rendered


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://alice:pw@db.example.com:6543/app",
        "postgresql://alice:pw@db.example.com:6543/app",
        "postgresql+asyncpg://alice:pw@db.example.com:6543/app",
        "  postgresql://alice:pw@db.example.com:6543/app\n",
    ],
)
def test_postgres_schemes_are_accepted(raw: str) -> None:
    target = parse_database_url(raw)

    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == (
        "db.example.com",
        6543,
        "app",
    )
    assert (target.url.username, target.url.password) == ("alice", "pw")
    assert target.connect_args == {}
    assert target.pooled is False


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://x/y",
        "mysql+pymysql://user:pass@localhost/db",
        "http://db.example.com/app",
        "sqlite:///catalog.db",
        "just some text",
        "db.example.com/app",
        "",
    ],
)
def test_other_schemes_are_refused_with_a_message(raw: str) -> None:
    message = refusal(raw)
    assert "postgres" in message


def test_refusal_names_the_scheme_given() -> None:
    assert "mysql" in refusal("mysql://x/y")


def test_connect_timeout_becomes_a_float_timeout() -> None:
    target = parse_database_url("postgresql://u@db.example.com/app?connect_timeout=10")
    assert target.connect_args == {"timeout": 10.0}
    assert isinstance(target.connect_args["timeout"], float)


def test_connect_timeout_must_be_a_number() -> None:
    assert "connect_timeout" in refusal("postgresql://u@db.example.com/app?connect_timeout=soon")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param("-c%20statement_timeout%3D5000", {"statement_timeout": "5000"}, id="-c k=v"),
        pytest.param("-c statement_timeout=5000", {"statement_timeout": "5000"}, id="unencoded"),
        pytest.param("-cstatement_timeout%3D5000", {"statement_timeout": "5000"}, id="-ck=v"),
        pytest.param(
            "-c%20statement_timeout%3D5000%20-c%20search_path%3Dcatalog",
            {"statement_timeout": "5000", "search_path": "catalog"},
            id="two",
        ),
        pytest.param("endpoint%3Dep-cool-darkness-123456", {}, id="neon-endpoint-dropped"),
    ],
)
def test_options_become_server_settings(options: str, expected: dict[str, str]) -> None:
    target = parse_database_url(f"postgresql://u@db.example.com/app?options={options}")
    assert target.connect_args.get("server_settings", {}) == expected


def test_application_name_becomes_a_server_setting() -> None:
    target = parse_database_url(
        "postgresql://u@db.example.com/app?application_name=catalog%20api"
        "&options=-c%20statement_timeout%3D5000"
    )
    assert target.connect_args == {
        "server_settings": {"application_name": "catalog api", "statement_timeout": "5000"}
    }


@pytest.mark.parametrize("ignored", ["channel_binding=require", "gssencmode=disable"])
def test_libpq_parameters_asyncpg_has_no_use_for_are_dropped(ignored: str) -> None:
    target = parse_database_url(f"postgresql://u@db.example.com/app?{ignored}")
    assert target.connect_args == {}
    assert dict(target.url.query) == {}


@pytest.mark.parametrize("parameter", ["foo", "sslrootcert", "keepalives"])
def test_unknown_parameter_is_refused_by_name(parameter: str) -> None:
    message = refusal(f"postgresql://u@db.example.com/app?sslmode=require&{parameter}=1")
    assert f"{parameter!r}" in message


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("disable", "disable"),
        ("prefer", "prefer"),
        ("require", "require"),
        ("verify-full", "verify-full"),
        ("REQUIRE", "require"),
    ],
)
def test_valid_ssl_modes_are_passed_on(value: str, mode: str) -> None:
    target = parse_database_url(f"postgresql://u@db.example.com/app?sslmode={value}")
    assert target.connect_args == {"ssl": mode}


@pytest.mark.parametrize("value", ["bogus", "required", "on", ""])
def test_invalid_ssl_mode_is_refused(value: str) -> None:
    message = refusal(f"postgresql://u@db.example.com/app?sslmode={value}")
    assert "sslmode" in message
    assert "require" in message  # says which values would do


def test_host_parameter_for_a_unix_socket_is_kept() -> None:
    target = parse_database_url("postgresql://postgres@/app?host=/var/run/postgresql")

    assert target.connect_args == {"host": "/var/run/postgresql"}
    assert target.url.host is None
    assert target.url.database == "app"
    assert target.host == "/var/run/postgresql"


def test_bad_port_parameter_is_refused_with_a_message() -> None:
    """`?port=` is translated like the others, so a bad one must be an InvalidDatabaseUrl."""
    assert "port" in refusal("postgresql://u@/app?host=/tmp&port=fivefourthreetwo")


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:p@db.example.com",
        "postgresql://u:p@db.example.com/",
        NEON_POOLED.split("/neondb")[0],
    ],
)
def test_missing_database_is_refused(raw: str) -> None:
    assert "database" in refusal(raw)


def test_missing_host_is_refused() -> None:
    assert "host" in refusal("postgresql:///app")


def test_pooled_detection_can_be_overridden() -> None:
    assert parse_database_url(NEON_POOLED, pooled=False).pooled is False
    assert parse_database_url("postgresql://u@db.example.com/app", pooled=True).pooled is True
    direct = NEON_POOLED.replace("-pooler", "")
    assert parse_database_url(direct).pooled is False


# --- direct_url_for -----------------------------------------------------------------------


def test_direct_url_drops_pooler_from_a_neon_host() -> None:
    direct = direct_url_for(NEON_POOLED)

    assert direct == NEON_POOLED.replace("-pooler", "")
    target = parse_database_url(direct)
    assert target.url.host == NEON_DIRECT_HOST
    assert target.pooled is False
    assert target.connect_args == {"ssl": "require"}


@pytest.mark.parametrize(
    ("password", "decoded"),
    [
        ("p%40ss", "p@ss"),
        ("p%3Ass", "p:ss"),
        ("a%40b%3Ac%2Fd", "a@b:c/d"),
        ("ep-cool-darkness-123456-pooler", "ep-cool-darkness-123456-pooler"),
    ],
)
def test_direct_url_keeps_the_credentials(password: str, decoded: str) -> None:
    pooled = f"postgresql://neon_user:{password}@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech:5432/neondb?sslmode=require"

    direct = direct_url_for(pooled)

    assert direct == pooled.replace(
        "@ep-cool-darkness-123456-pooler.", "@ep-cool-darkness-123456.", 1
    )
    target = parse_database_url(direct)
    assert (target.url.username, target.url.password) == ("neon_user", decoded)
    assert (target.url.host, target.url.port) == (NEON_DIRECT_HOST, 5432)


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://u:p@db.example.com/app",
        "postgresql://u:p@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb",
        "postgresql://u:p@ep-x-pooler.example.com/app",
        "postgresql://u:p@db-pooler.internal:6432/app",
        "postgresql://u:p%40ss%3Aw@127.0.0.1:5432/app",
        "postgresql://postgres@/app?host=/var/run/postgresql",
    ],
)
def test_direct_url_leaves_other_urls_unchanged(raw: str) -> None:
    assert direct_url_for(raw) == raw


def test_direct_url_for_ignores_the_case_of_the_host() -> None:
    """Host names are case-insensitive: an upper-case Neon pooler host is still the pooler.

    `direct_url_for` matches the lower-cased host but then looks for that lower-cased text in
    the original netloc, finds nothing, and hands back the pooled URL for migrations.
    """
    upper = NEON_POOLED.replace(
        "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech",
        "EP-COOL-DARKNESS-123456-POOLER.US-EAST-2.AWS.NEON.TECH",
    )

    host = parse_database_url(direct_url_for(upper)).url.host

    assert host is not None
    assert host.lower() == NEON_DIRECT_HOST


def test_neon_pooler_detection_ignores_the_case_of_the_host() -> None:
    upper = NEON_POOLED.replace("ep-cool-darkness-123456-pooler", "EP-COOL-DARKNESS-123456-POOLER")
    assert parse_database_url(upper).pooled is True


# --- Settings -----------------------------------------------------------------------------


def test_settings_database_is_the_pooled_target(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(monkeypatch, DATABASE_URL=NEON_POOLED)

    assert config.database.pooled is True
    assert config.database.url.host == "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"


def test_migration_database_is_derived_from_a_pooled_url(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(monkeypatch, DATABASE_URL=NEON_POOLED)

    migration = config.migration_database
    assert migration.url.host == NEON_DIRECT_HOST
    assert migration.pooled is False
    assert migration.connect_args == {"ssl": "require"}
    assert (migration.url.username, migration.url.password) == ("user", "pass")


def test_migration_database_uses_database_direct_url_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    direct = "postgresql://migrator:pw@db-primary.example.com:5432/neondb?sslmode=verify-full"
    config = settings(monkeypatch, DATABASE_URL=NEON_POOLED, DATABASE_DIRECT_URL=direct)

    migration = config.migration_database
    assert (migration.url.username, migration.url.host) == ("migrator", "db-primary.example.com")
    assert migration.connect_args == {"ssl": "verify-full"}
    assert migration.pooled is False
    assert config.database.url.username == "user"  # the API itself still uses DATABASE_URL


def test_direct_url_that_looks_pooled_is_still_never_pooled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = settings(
        monkeypatch,
        DATABASE_URL="postgresql://u@db.example.com/app",
        DATABASE_DIRECT_URL=NEON_POOLED,
        DATABASE_POOLED="true",
    )
    assert config.migration_database.pooled is False


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_database_pooled_true_forces_pooled_on_a_non_neon_url(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    url = "postgresql://app:pw@pgbouncer.internal:6432/catalog"
    config = settings(monkeypatch, DATABASE_URL=url, DATABASE_POOLED=value)

    assert config.database.pooled is True
    assert config.database.url.host == "pgbouncer.internal"
    # Migrations never go through a transaction-mode pooler: without a direct URL, none at all.
    with pytest.raises(PooledMigrationTarget, match="set DATABASE_DIRECT_URL"):
        _ = config.migration_database


def test_database_pooled_false_overrides_neon_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(monkeypatch, DATABASE_URL=NEON_POOLED, DATABASE_POOLED="false")
    assert config.database.pooled is False


def test_without_database_pooled_a_plain_url_is_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(monkeypatch, DATABASE_URL="postgresql://u@db.example.com/app")
    assert config.database.pooled is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://x/y"),
        ("DATABASE_URL", "postgresql://u@db.example.com/app?sslmode=nope"),
        ("DATABASE_DIRECT_URL", "postgresql://u@db.example.com"),
    ],
)
def test_settings_refuse_a_bad_url_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    environment = {"DATABASE_URL": "postgresql://u@db.example.com/app", variable: value}
    with pytest.raises(ValidationError) as caught:
        settings(monkeypatch, **environment)
    assert variable in str(caught.value)


def test_settings_require_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(monkeypatch)
    assert [error["type"] for error in caught.value.errors()] == ["missing"]
    assert caught.value.errors()[0]["loc"] == ("database_url",)


# --- connect_args_for ---------------------------------------------------------------------


def test_pooled_targets_never_reuse_prepared_statements() -> None:
    target = parse_database_url(NEON_POOLED)

    args = connect_args_for(target)

    assert args["ssl"] == "require"
    assert args["statement_cache_size"] == 0
    assert args["prepared_statement_cache_size"] == 0
    name_for = args["prepared_statement_name_func"]
    names = {name_for() for _ in range(2)}
    assert len(names) == 2
    assert all(isinstance(name, str) and name for name in names)
    assert target.connect_args == {"ssl": "require"}  # the target itself is not changed


def test_direct_targets_keep_asyncpg_statement_caching() -> None:
    target = parse_database_url(direct_url_for(NEON_POOLED))

    args = connect_args_for(target)

    assert args == {"ssl": "require"}
    assert not {
        "statement_cache_size",
        "prepared_statement_cache_size",
        "prepared_statement_name_func",
    } & set(args)


# --- asyncpg accepts what the translation produces ----------------------------------------


def with_query(database_url: str, query: str) -> str:
    return f"{database_url}{'&' if '?' in database_url else '?'}{query}"


async def scalar_over(target: DatabaseTarget, sql: str, **params: Any) -> Any:
    engine = create_async_engine(target.url, connect_args=connect_args_for(target))
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text(sql), params)
    finally:
        await engine.dispose()


async def test_asyncpg_accepts_the_translated_connect_args(database_url: str) -> None:
    raw = with_query(
        database_url,
        "sslmode=disable&channel_binding=require&application_name=catalog-url-test"
        "&connect_timeout=5&options=-c%20statement_timeout%3D4321",
    )
    target = parse_database_url(raw)
    assert target.connect_args["ssl"] == "disable"

    name = await scalar_over(target, "SELECT current_setting('application_name')")
    timeout = await scalar_over(target, "SELECT current_setting('statement_timeout')")

    assert name == "catalog-url-test"
    assert timeout == "4321ms"


async def test_asyncpg_accepts_the_pooled_connect_args(database_url: str) -> None:
    target = parse_database_url(
        with_query(database_url, "sslmode=disable&application_name=x"), pooled=True
    )
    engine = create_async_engine(target.url, connect_args=connect_args_for(target))
    try:
        async with engine.connect() as connection:
            # The same statement twice: with unique names and no cache, both must work.
            results = [
                await connection.scalar(text("SELECT CAST(:n AS integer) + 1"), {"n": n})
                for n in (1, 2)
            ]
            name = await connection.scalar(text("SELECT current_setting('application_name')"))
    finally:
        await engine.dispose()
    assert results == [2, 3]
    assert name == "x"
