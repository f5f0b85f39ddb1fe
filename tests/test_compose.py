"""docker-compose.yml is a faithful local stand-in for production on Neon, and it can start.

Nothing here runs Docker: the file is read as data and checked against the code it starts
(the CLI's subcommands, the settings' names, the URL parser) and the files it mounts, so a
renamed flag, setting, service or script breaks this test instead of `docker compose up`.
tests/test_compose_config.py has Docker Compose itself validate the file.
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
URL_VARIABLES = ("DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_READ_URLS")
APP_SERVICES = ("migrate", "api")
ONE_SHOT_SERVICES = {"migrate"}
# Variables compose may set before a setting of that name lands in Settings; once it exists,
# the test holds its value to the setting's type like any (DATABASE_READ_URLS has landed).
PENDING_SETTINGS: set[str] = set()
# An exact release, major.minor at least: postgres 17.11, nginx 1.30.5, pgbouncer v1.25.2-p0
# (not `latest`, not a bare major such as `17` that moves with every minor release).
EXACT_RELEASE = re.compile(r"v?\d+\.\d+")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

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


def urls(variable: str, value: str) -> list[str]:
    """The URLs a variable holds: DATABASE_READ_URLS may list several, comma-separated."""
    if variable == "DATABASE_READ_URLS":
        return [part.strip() for part in value.split(",") if part.strip()]
    return [value]


def image_reference(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of `name[:tag][@digest]`; a registry port is not a tag."""
    rest, _, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        return rest, "", digest
    return name, tag, digest


def bind_mounts(service: Service) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount (a named volume's source has no slash)."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            source, container = str(entry.get("source", "")), str(entry.get("target", ""))
        else:
            source, _, rest = str(entry).partition(":")
            container = rest.partition(":")[0]
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE_FILE.parent / source).resolve(), container))
    return mounts


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
    assert {"db", "db-replica", "pgbouncer", "migrate", "api", "lb"} <= set(services)


def test_every_image_is_pinned_to_an_exact_release(services: dict[str, Service]) -> None:
    images = {
        name: str(service["image"]) for name, service in services.items() if "image" in service
    }
    assert set(images) >= {"db", "db-replica", "pgbouncer", "lb"}
    for name, image in images.items():
        _, tag, digest = image_reference(image)
        assert EXACT_RELEASE.match(tag), f"{name}: {image} names no exact release"
        assert not digest or DIGEST.fullmatch(digest), f"{name}: {image}"


def test_replica_runs_the_primarys_image(services: dict[str, Service]) -> None:
    """Streaming replication needs the same Postgres major version (and build) on both ends."""
    assert services["db-replica"]["image"] == services["db"]["image"]


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
        "db-replica": "service_started",
    }
    # The replica is started first but not required: without it reads go to the primary.
    assert api["depends_on"]["db-replica"].get("required") is False
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
    """The replica is a copy of db, so its URL names db's database and user too."""
    db = environment(services["db"])
    found = [
        (name, url)
        for service in services.values()
        for name, value in environment(service).items()
        if name in URL_VARIABLES
        for url in urls(name, value)
    ]
    assert len(found) >= 5, found
    for name, url in found:
        parsed = target(url).url
        assert (parsed.username, parsed.password, parsed.database) == (
            db["POSTGRES_USER"],
            db["POSTGRES_PASSWORD"],
            db["POSTGRES_DB"],
        ), f"{name}={url}"


def test_only_the_migrate_job_runs_once(services: dict[str, Service]) -> None:
    one_shot = {name for name, service in services.items() if service.get("restart") == "no"}
    assert one_shot == ONE_SHOT_SERVICES


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Service]) -> None:
    long_running = sorted(set(services) - ONE_SHOT_SERVICES)
    assert {"db", "db-replica", "pgbouncer", "api", "lb"} <= set(long_running)
    for name in long_running:
        healthcheck = services[name].get("healthcheck")
        assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
        test = healthcheck.get("test")
        assert isinstance(test, list), test
        assert test[0] in ("CMD", "CMD-SHELL"), test
        assert len(test) > 1
        assert re.fullmatch(r"\d+(ms|s|m)", str(healthcheck.get("interval"))), healthcheck
        assert int(healthcheck.get("retries", 0)) >= 1, healthcheck


def test_every_bind_mount_is_a_file_in_the_repository(services: dict[str, Service]) -> None:
    mounted = [
        (name, *mount) for name, service in services.items() for mount in bind_mounts(service)
    ]
    assert len(mounted) >= 3, mounted
    for name, host, _ in mounted:
        assert host.is_file(), f"{name} mounts {host}, which is not in the repository"
        assert host.is_relative_to(ROOT), host


def test_the_replica_streams_from_db_with_the_role_and_slot_db_creates(
    services: dict[str, Service],
) -> None:
    db, replica = services["db"], services["db-replica"]
    replica_env, db_env = environment(replica), environment(db)
    assert replica_env["PRIMARY_HOST"] == "db"
    assert replica_env["PRIMARY_PORT"] == "5432"
    for variable in ("REPLICATION_USER", "REPLICATION_PASSWORD", "REPLICATION_SLOT"):
        assert replica_env[variable] == db_env[variable], variable
    assert depends_on(replica) == {"db": "service_healthy"}
    # db runs its init script on first start; the replica's entrypoint is its own script.
    init_scripts = [
        host
        for host, container in bind_mounts(db)
        if container.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert len(init_scripts) == 1
    assert "pg_create_physical_replication_slot" in init_scripts[0].read_text()
    entrypoint = [str(word) for word in replica["entrypoint"]]
    scripts = {container: host for host, container in bind_mounts(replica)}
    assert entrypoint[0] in scripts, entrypoint
    script = scripts[entrypoint[0]]
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
    assert "pg_basebackup" in script.read_text()
    # Whatever the script does first, it ends by running the image's entrypoint with `command`.
    assert command(replica)[0] == "postgres"


def test_api_reads_from_the_replica(services: dict[str, Service]) -> None:
    read_urls = urls("DATABASE_READ_URLS", environment(services["api"])["DATABASE_READ_URLS"])
    assert [target(url).host for url in read_urls] == ["db-replica"]
    assert all(target(url).url.port in (None, 5432) for url in read_urls)


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


def container_ports(service: Service) -> list[int]:
    ports = []
    for entry in service.get("ports") or []:
        container = entry.get("target") if isinstance(entry, dict) else str(entry).split(":")[-1]
        ports.append(int(str(container).partition("/")[0]))
    return ports


def nginx_config(service: Service) -> str:
    configs = [host for host, container in bind_mounts(service) if container.endswith(".conf")]
    assert len(configs) == 1, configs
    return configs[0].read_text()


def test_two_or_more_api_replicas_run_behind_the_load_balancer(
    services: dict[str, Service],
) -> None:
    api, lb = services["api"], services["lb"]
    assert int(api["deploy"]["replicas"]) >= 2
    # Replicas cannot share a host port: only the balancer publishes one.
    assert container_ports(api) == []
    assert depends_on(lb) == {"api": "service_healthy"}
    name, _, _ = image_reference(str(lb["image"]))
    assert name in ("nginx", "docker.io/library/nginx", "library/nginx"), lb["image"]


def test_the_load_balancer_reaches_the_served_port(services: dict[str, Service]) -> None:
    api, lb = services["api"], services["lb"]
    arguments = api_arguments(command(api))
    assert arguments is not None
    port = int(option(arguments, "--port"))
    assert option(arguments, "--host") == "0.0.0.0"  # reachable from outside the container
    config = nginx_config(lb)
    # Every `api` container, by name (Docker's DNS answers with one address per replica).
    assert re.findall(r"^\s*server\s+([\w.-]+:\d+)", config, re.MULTILINE) == [f"api:{port}"]
    assert re.search(r"^\s*proxy_pass\s+http://api;", config, re.MULTILINE)
    listen = re.findall(r"^\s*listen\s+(\d+)", config, re.MULTILINE)
    assert [int(found) for found in listen] == container_ports(lb)
    for entry in lb["ports"]:
        assert str(entry).startswith("127.0.0.1:"), f"{entry}: publish on loopback only"
    probe = " ".join(str(word) for word in lb["healthcheck"]["test"])
    assert f"127.0.0.1:{listen[0]}/readyz" in probe


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
    known = set(Settings.model_fields) | set(LogSettings.model_fields) | PENDING_SETTINGS
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
                for url in urls(name, value):
                    assert target(url).url.drivername == "postgresql+asyncpg"
                    checked += 1
    assert checked >= 5
