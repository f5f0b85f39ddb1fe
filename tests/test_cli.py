"""`python -m api` as a user runs it: in a fresh process, from a directory with no `.env`."""

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.cli_errors import CommandFailed
from api.demo import DEMO_AUTHORS
from api.graphql.schema import schema
from api.serving.listen import bind_listener
from api.settings import Settings
from tests.postgres import create_database, drop_database

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SCHEMA = PROJECT_ROOT / "schema.graphql"


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without any setting the service reads, plus `variables`."""
    read_by_settings = {name.upper() for name in Settings.model_fields}
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in read_by_settings and not name.upper().startswith("DATABASE_")
    }
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update(variables)
    return env


def run_cli(cwd: Path, *args: str, **variables: str) -> Finished:
    assert not (cwd / ".env").exists()
    completed = subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=cwd,
        env=environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Finished(completed.returncode, completed.stdout, completed.stderr)


async def run_cli_async(cwd: Path, *args: str, **variables: str) -> Finished:
    """The same, without blocking the event loop the test's database fixtures live on."""
    assert not (cwd / ".env").exists()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api",
        *args,
        cwd=cwd,
        env=environment(**variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


def single_error_line(finished: Finished) -> str:
    assert finished.returncode != 0, finished
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    return lines[0]


# --- settings errors ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "migrate", "seed"])
def test_missing_database_url_is_one_line_saying_what_to_set(tmp_path: Path, command: str) -> None:
    line = single_error_line(run_cli(tmp_path, command))

    assert "DATABASE_URL" in line
    assert "export DATABASE_URL=postgresql://" in line


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x/y",
        "postgresql://user:s3cr3t@db.example.com",
        "postgresql://user:s3cr3t@db.example.com/app?sslmode=maybe",
    ],
)
def test_malformed_database_url_is_one_line_naming_it(tmp_path: Path, url: str) -> None:
    line = single_error_line(run_cli(tmp_path, "migrate", DATABASE_URL=url))

    assert "DATABASE_URL" in line
    assert "s3cr3t" not in line  # the password is never echoed


def test_malformed_database_direct_url_is_named(tmp_path: Path) -> None:
    line = single_error_line(
        run_cli(
            tmp_path,
            "migrate",
            DATABASE_URL="postgresql://u@db.example.com/app",
            DATABASE_DIRECT_URL="mysql://x/y",
        )
    )
    assert "DATABASE_DIRECT_URL" in line


# --- export-schema ------------------------------------------------------------------------


def test_export_schema_check_passes_on_the_committed_schema(tmp_path: Path) -> None:
    finished = run_cli(tmp_path, "export-schema", "--check")

    assert finished.returncode == 0, finished.stderr
    assert COMMITTED_SCHEMA.read_text() == schema.as_str() + "\n"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing-file"),
        pytest.param("type Query { hello: String }\n", id="other-schema"),
        pytest.param(schema.as_str(), id="no-final-newline"),
    ],
)
def test_export_schema_check_fails_on_a_different_file(tmp_path: Path, content: str | None) -> None:
    output = tmp_path / "schema.graphql"
    if content is not None:
        output.write_text(content)

    finished = run_cli(tmp_path, "export-schema", "--check", "--output", str(output))

    assert finished.returncode == 1
    assert str(output) in finished.stderr
    # --check never writes.
    assert output.exists() == (content is not None)
    if content is not None:
        assert output.read_text() == content


def test_export_schema_writes_the_printed_schema(tmp_path: Path) -> None:
    output = tmp_path / "out.graphql"
    output.write_text("stale\n")

    written = run_cli(tmp_path, "export-schema", "--output", str(output))

    assert written.returncode == 0, written.stderr
    assert output.read_text() == schema.as_str() + "\n"
    checked = run_cli(tmp_path, "export-schema", "--check", "--output", str(output))
    assert checked.returncode == 0, checked.stderr


# --- seed ---------------------------------------------------------------------------------


async def catalogue(engine: AsyncEngine) -> dict[str, tuple[str | None, list[str]]]:
    """Author name -> (country, book titles) for everything in the database."""
    async with engine.connect() as connection:
        authors = (await connection.execute(text("SELECT id, name, country FROM authors"))).all()
        books = (await connection.execute(text("SELECT author_id, title FROM books"))).all()
    names = {row.id: row.name for row in authors}
    assert len(names) == len(set(names.values())), "an author was written twice"
    result: dict[str, tuple[str | None, list[str]]] = {
        row.name: (row.country, []) for row in authors
    }
    for book in books:
        result[names[book.author_id]][1].append(book.title)
    return {name: (country, sorted(titles)) for name, (country, titles) in result.items()}


async def test_seed_twice_writes_the_demo_catalogue_once(
    tmp_path: Path, database_url: str, engine: AsyncEngine
) -> None:
    expected = {
        author["name"]: (author["country"], sorted(author["books"])) for author in DEMO_AUTHORS
    }
    expected_books = sum(len(titles) for _, titles in expected.values())

    first = await run_cli_async(tmp_path, "seed", DATABASE_URL=database_url)

    assert first.returncode == 0, first.stderr
    assert f"seeded {len(DEMO_AUTHORS)} author(s)" in first.stdout
    assert all(name in first.stdout for name in expected)
    after_first = await catalogue(engine)
    assert after_first == expected
    assert sum(len(titles) for _, titles in after_first.values()) == expected_books

    second = await run_cli_async(tmp_path, "seed", DATABASE_URL=database_url)

    assert second.returncode == 0, second.stderr
    assert "seeded 0 author(s)" in second.stdout
    assert await catalogue(engine) == expected


async def test_seed_adds_only_the_missing_demo_authors(
    tmp_path: Path, database_url: str, engine: AsyncEngine
) -> None:
    kept = DEMO_AUTHORS[1]
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO authors (name, country) VALUES (:name, 'Elsewhere')"),
            {"name": kept["name"]},
        )

    finished = await run_cli_async(tmp_path, "seed", DATABASE_URL=database_url)

    assert finished.returncode == 0, finished.stderr
    assert f"seeded {len(DEMO_AUTHORS) - 1} author(s)" in finished.stdout
    seeded = await catalogue(engine)
    assert seeded[kept["name"]] == ("Elsewhere", [])
    assert set(seeded) == {author["name"] for author in DEMO_AUTHORS}


# --- one line when the database cannot be used ----------------------------------------------

UNRESOLVABLE_URL = "postgresql://app@nonexistent.invalid/catalog"

# Every command that connects, with the settings that make it connect.
CONNECTING_COMMANDS = [
    pytest.param(["migrate"], {}, id="migrate"),
    pytest.param(["seed"], {}, id="seed"),
    pytest.param(["dev", "--port", "0"], {}, id="dev"),
    pytest.param(
        ["serve", "--port", "0"], {"MIGRATE_ON_START": "true"}, id="serve-migrate-on-start"
    ),
]


def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(("args", "settings"), CONNECTING_COMMANDS)
def test_unresolvable_host_is_one_line_naming_it(
    tmp_path: Path, args: list[str], settings: dict[str, str]
) -> None:
    finished = run_cli(tmp_path, *args, DATABASE_URL=UNRESOLVABLE_URL, **settings)

    assert finished.returncode == 1
    assert (
        single_error_line(finished) == "error: cannot reach nonexistent.invalid: DNS lookup failed"
    )
    assert finished.stdout == ""


@pytest.mark.parametrize(("args", "settings"), CONNECTING_COMMANDS)
def test_refused_connection_is_one_line_naming_host_and_port(
    tmp_path: Path, args: list[str], settings: dict[str, str]
) -> None:
    port = closed_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/catalog"

    finished = run_cli(tmp_path, *args, DATABASE_URL=url, **settings)

    assert finished.returncode == 1
    assert (
        single_error_line(finished) == f"error: cannot reach 127.0.0.1:{port}: connection refused"
    )


def test_server_that_never_answers_is_one_line_saying_it_timed_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        finished = run_cli(
            tmp_path,
            "seed",
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/catalog",
            DB_CONNECT_TIMEOUT="0.5",
            DB_CONNECT_ATTEMPTS="1",
        )

    assert single_error_line(finished) == f"error: cannot reach 127.0.0.1:{port}: timed out"


def test_each_retry_says_where_and_why_at_debug_level(tmp_path: Path) -> None:
    port = closed_port()
    variables = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/catalog",
        "DB_CONNECT_ATTEMPTS": "3",
        "LOG_FORMAT": "text",
    }

    quiet = run_cli(tmp_path, "seed", **variables)
    chatty = run_cli(tmp_path, "seed", LOG_LEVEL="DEBUG", **variables)

    assert len(quiet.stderr.splitlines()) == 1, quiet.stderr
    *retries, last = chatty.stderr.splitlines()
    assert last == f"error: cannot reach 127.0.0.1:{port}: connection refused"
    notes = [line for line in retries if "api.db.engine" in line]
    assert len(notes) == 2, chatty.stderr
    for attempt, note in enumerate(notes, start=1):
        assert f"cannot reach 127.0.0.1:{port}: connection refused (attempt {attempt} of 3)" in note
    assert "Retrying" not in chatty.stderr
    assert "<unknown>" not in chatty.stderr
    assert "Traceback" not in chatty.stderr


async def test_seed_before_migrate_is_one_line_saying_to_migrate(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    url = await create_database(postgres_admin_url, prefix="catalog_test_unmigrated")
    try:
        finished = await run_cli_async(tmp_path, "seed", DATABASE_URL=url)
    finally:
        await drop_database(postgres_admin_url, url)

    assert finished.returncode == 1
    assert single_error_line(finished) == (
        "error: the database is not migrated: run python -m api migrate"
    )


@pytest.mark.parametrize(
    ("command", "settings"),
    [
        pytest.param("serve", {"DATABASE_URL": UNRESOLVABLE_URL}, id="serve"),
        pytest.param(
            "serve",
            {"DATABASE_URL": UNRESOLVABLE_URL, "MIGRATE_ON_START": "true"},
            id="serve-migrate-on-start",
        ),
        pytest.param("dev", {}, id="dev"),
    ],
)
def test_a_port_in_use_is_one_line_and_status_1(
    tmp_path: Path, command: str, settings: dict[str, str]
) -> None:
    """Said before anything starts: no database is reached, migrated or started."""
    embedded = tmp_path / "pgdata"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = run_cli(
            tmp_path, command, "--port", str(port), EMBEDDED_PGDATA=str(embedded), **settings
        )

    assert finished.returncode == 1, finished
    assert single_error_line(finished) == (
        f"error: port {port} on 127.0.0.1 is already in use; "
        "choose another with PORT=… (make run) or --port"
    )
    assert not embedded.exists()


# --- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_host_and_port_are_explained(tmp_path: Path, command: str) -> None:
    finished = run_cli(tmp_path, command, "--help")

    assert finished.returncode == 0, finished.stderr
    usage = " ".join(finished.stdout.split())
    assert "--host HOST address to listen on (default: 127.0.0.1" in usage
    assert "--port PORT TCP port to listen on (default: 8000)" in usage


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param([], "--host 127.0.0.1 --port 8000", id="defaults"),
        pytest.param(["PORT=8123", "HOST=0.0.0.0"], "--host 0.0.0.0 --port 8123", id="chosen"),
    ],
)
def test_make_run_passes_the_port_and_host(variables: list[str], expected: str) -> None:
    # A shell's HOST (the machine's name, in some) is not where to listen.
    # Under `make check` this runs inside another make: drop what the outer one exports.
    inherited = {"PORT", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
    env = {name: value for name, value in environment().items() if name not in inherited}
    env["HOST"] = "build-machine.example"
    completed = subprocess.run(
        ["make", "--no-print-directory", "--dry-run", "--always-make", "run", *variables],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.splitlines()[-1].endswith(f"-m api dev {expected}"), completed.stdout


def test_a_port_bound_by_a_run_still_starting_is_in_use() -> None:
    """Two runs started together: the second is refused even while the first is still
    migrating (its port bound, nothing served yet)."""
    with bind_listener("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(CommandFailed) as refused:
            bind_listener("127.0.0.1", port)
    assert str(refused.value) == (
        f"error: port {port} on 127.0.0.1 is already in use; "
        "choose another with PORT=… (make run) or --port"
    )
