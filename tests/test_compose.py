"""docker-compose.yml is a faithful local stand-in for production on Neon, and it can start.

Nothing here runs Docker: the file is read as data and checked against the code it starts
(the CLI's subcommands, the settings' names, the URL parser), so a renamed flag, setting or
service breaks this test instead of `docker compose up`.
"""

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from api.cli import build_parser
from api.db.urls import DatabaseTarget, parse_database_url
from api.observability.logs import LogSettings
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NEON_POSTGRES_MAJORS = range(14, 18)  # the versions Neon offers: 14, 15, 16 and 17
URL_VARIABLES = ("DATABASE_URL", "DATABASE_DIRECT_URL")
APP_SERVICES = ("migrate", "api")

Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    found = compose.get("services")
    assert isinstance(found, dict)
    return found


def environment(service: Service) -> dict[str, str]:
    """A service's environment, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def command(service: Service) -> list[str]:
    raw = service.get("command")
    assert raw is not None, f"no command in {service}"
    return shlex.split(raw) if isinstance(raw, str) else [str(word) for word in raw]


def api_arguments(words: list[str]) -> list[str] | None:
    """The arguments after `python -m api`, or None for any other command."""
    if len(words) >= 3 and Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "api"]:
        return words[3:]
    return None


def option(words: list[str], name: str) -> str:
    index = words.index(name)
    return words[index + 1]


def depends_on(service: Service) -> dict[str, str]:
    """Each dependency's condition (the short list form means service_started)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def target(url: str) -> DatabaseTarget:
    return parse_database_url(url)


def app_settings(service: Service) -> Settings:
    """The settings the service would load from its environment (and nothing else)."""
    values = {
        name.lower(): value
        for name, value in environment(service).items()
        if name.lower() in Settings.model_fields
    }
    return Settings.model_validate(values)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    if arguments.startswith("["):
        words = json.loads(arguments)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return shlex.split(arguments)


def test_services_exist(services: dict[str, Service]) -> None:
    assert {"db", "pgbouncer", "migrate", "api"} <= set(services)


def test_db_runs_a_postgres_version_neon_offers(services: dict[str, Service]) -> None:
    image = str(services["db"]["image"])
    name, _, tag = image.partition(":")
    assert name in ("postgres", "docker.io/library/postgres", "library/postgres"), image
    major = re.match(r"\d+", tag)
    assert major is not None, f"{image}: pin a major version, not {tag or 'latest'!r}"
    assert int(major[0]) in NEON_POSTGRES_MAJORS, image


def test_pgbouncer_pools_transactions_in_front_of_db(services: dict[str, Service]) -> None:
    pgbouncer = services["pgbouncer"]
    env = environment(pgbouncer)
    assert env["POOL_MODE"] == "transaction"
    assert depends_on(pgbouncer) == {"db": "service_healthy"}
    upstream = target(env["DATABASE_URL"])
    assert upstream.host == "db"
    assert upstream.url.port in (None, 5432)


def test_migrate_runs_migrations_over_the_direct_connection(
    services: dict[str, Service],
) -> None:
    migrate = services["migrate"]
    assert api_arguments(command(migrate)) == ["migrate"]
    assert target(environment(migrate)["DATABASE_URL"]).host == "db"
    assert depends_on(migrate) == {"db": "service_healthy"}
    settings = app_settings(migrate)
    assert settings.migration_database.host == "db"
    assert not settings.migration_database.pooled


def test_api_serves_through_the_pooler(services: dict[str, Service]) -> None:
    api = services["api"]
    arguments = api_arguments(command(api))
    assert arguments is not None
    assert arguments[0] == "serve"
    env = environment(api)
    pooled = target(env["DATABASE_URL"])
    assert pooled.host == "pgbouncer"
    assert env["DATABASE_POOLED"].lower() == "true"
    assert target(env["DATABASE_DIRECT_URL"]).host == "db"
    assert depends_on(api) == {
        "migrate": "service_completed_successfully",
        "pgbouncer": "service_healthy",
    }
    # What the service makes of it: pooled handling for queries, the direct URL for migrations.
    settings = app_settings(api)
    assert settings.database.pooled
    assert settings.database.host == "pgbouncer"
    assert settings.migration_database.host == "db"
    assert not settings.migration_database.pooled


def test_api_reaches_pgbouncer_on_the_port_it_listens_on(services: dict[str, Service]) -> None:
    listen_port = int(environment(services["pgbouncer"]).get("LISTEN_PORT", "5432"))
    assert target(environment(services["api"])["DATABASE_URL"]).url.port == listen_port
    healthcheck = [str(word) for word in services["pgbouncer"]["healthcheck"]["test"]]
    assert option(healthcheck, "-p") == str(listen_port)


def test_every_url_names_the_database_and_user_db_creates(services: dict[str, Service]) -> None:
    db = environment(services["db"])
    urls = [
        (name, value)
        for service in services.values()
        for name, value in environment(service).items()
        if name in URL_VARIABLES
    ]
    assert len(urls) >= 4, urls
    for name, url in urls:
        parsed = target(url).url
        assert (parsed.username, parsed.password, parsed.database) == (
            db["POSTGRES_USER"],
            db["POSTGRES_PASSWORD"],
            db["POSTGRES_DB"],
        ), f"{name}={url}"


@pytest.mark.parametrize("name", ["db", "pgbouncer", "api"])
def test_service_has_a_healthcheck(services: dict[str, Service], name: str) -> None:
    healthcheck = services[name].get("healthcheck")
    assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
    test = healthcheck.get("test")
    assert isinstance(test, list), test
    assert test[0] in ("CMD", "CMD-SHELL"), test
    assert len(test) > 1
    assert re.fullmatch(r"\d+(ms|s|m)", str(healthcheck.get("interval"))), healthcheck
    assert int(healthcheck.get("retries", 0)) >= 1, healthcheck


def test_api_healthcheck_asks_readyz_on_the_served_port(services: dict[str, Service]) -> None:
    api = services["api"]
    arguments = api_arguments(command(api))
    assert arguments is not None
    port = int(option(arguments, "--port"))
    probe = " ".join(str(word) for word in api["healthcheck"]["test"])
    urls = re.findall(r"https?://[^\s'\"]+", probe)
    assert len(urls) == 1, probe
    parts = urlsplit(urls[0])
    assert parts.path == "/readyz"
    assert parts.hostname in ("127.0.0.1", "localhost")
    assert parts.port == port


def test_published_ports_reach_the_served_port(services: dict[str, Service]) -> None:
    api = services["api"]
    arguments = api_arguments(command(api))
    assert arguments is not None
    port = int(option(arguments, "--port"))
    assert option(arguments, "--host") == "0.0.0.0"  # reachable from outside the container
    published = api.get("ports") or []
    assert published, "the api publishes no port"
    for entry in published:
        container = entry.get("target") if isinstance(entry, dict) else str(entry).split(":")[-1]
        assert int(str(container).partition("/")[0]) == port, entry


def compose_api_commands(services: dict[str, Service]) -> list[tuple[str, list[str]]]:
    commands = []
    for name, service in services.items():
        if "command" in service:
            arguments = api_arguments(command(service))
            if arguments is not None:
                commands.append((name, arguments))
    return commands


def test_every_python_m_api_command_is_a_real_subcommand(services: dict[str, Service]) -> None:
    commands = compose_api_commands(services)
    assert {name for name, _ in commands} >= set(APP_SERVICES)
    parser = build_parser()
    for name, arguments in commands:
        try:
            parsed = parser.parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{name}: `python -m api {shlex.join(arguments)}` is not a valid command")
        assert parsed.command == arguments[0]
        assert callable(parsed.handler)


def test_build_context_has_a_dockerfile_whose_cmd_is_a_real_subcommand(
    services: dict[str, Service],
) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert set(APP_SERVICES) <= set(built)
    for name, build in built.items():
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        )
        path = (COMPOSE_FILE.parent / context / dockerfile).resolve()
        assert path.is_file(), f"{name}: no {path}"
        instructions = dockerfile_instructions(path)
        assert not [args for instruction, args in instructions if instruction == "ENTRYPOINT"]
        cmds = [exec_form(args) for instruction, args in instructions if instruction == "CMD"]
        assert cmds, f"{path} has no CMD"
        arguments = api_arguments(cmds[-1])  # the last CMD is the one that counts
        assert arguments is not None, cmds[-1]
        try:
            parsed = build_parser().parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{path}: CMD `{shlex.join(cmds[-1])}` is not a valid command")
        assert parsed.command == "serve"
        exposed = [args for instruction, args in instructions if instruction == "EXPOSE"]
        assert exposed == [option(arguments, "--port")]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_names_are_settings(services: dict[str, Service], name: str) -> None:
    known = set(Settings.model_fields) | set(LogSettings.model_fields)
    env = environment(services[name])
    unknown = sorted(variable for variable in env if variable.lower() not in known)
    assert unknown == [], f"{name} sets variables the service never reads"
    # And their values are ones the settings accept (LogSettings ignores the others).
    app_settings(services[name])
    LogSettings.model_validate({variable.lower(): value for variable, value in env.items()})


def test_every_database_url_parses(services: dict[str, Service]) -> None:
    checked = 0
    for service in services.values():
        for name, value in environment(service).items():
            if name in URL_VARIABLES:
                assert target(value).url.drivername == "postgresql+asyncpg"
                checked += 1
    assert checked >= 4
