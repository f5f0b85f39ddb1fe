"""`python -m api` as a user runs it: in a fresh process, from a directory with no `.env`."""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.demo import DEMO_AUTHORS
from api.graphql.schema import schema
from api.settings import Settings

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
