"""`python -m api documents load FILE` as an operator runs it: one line out, exit status set."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.documents import (
    AUTHORS,
    BOOKS,
    NAMED,
    apollo_manifest,
    codegen_manifest,
    encoded,
    md5,
    relay_manifest,
    sha256,
)
from tests.postgres import create_database, drop_database
from tests.test_cli import run_cli_async, single_error_line

FORMATS: list[Any] = [
    pytest.param(
        codegen_manifest,
        "graphql-codegen persisted documents",
        lambda body: f"sha256:{sha256(body)}",
        id="codegen",
    ),
    pytest.param(
        relay_manifest,
        "Relay persisted queries",
        lambda body: f"relay:{md5(body)}",
        id="relay",
    ),
    pytest.param(
        apollo_manifest,
        "Apollo persisted-query manifest",
        lambda body: f"sha256:{sha256(body)}",
        id="apollo",
    ),
]


@pytest.fixture
async def documents_engine(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE persisted_documents"))
    return engine


async def stored(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, body FROM persisted_documents"))
        return {row.id: row.body for row in rows}


def written(directory: Path, manifest: Any) -> Path:
    path = directory / "manifest.json"
    path.write_bytes(encoded(manifest))
    return path


@pytest.mark.parametrize(("build", "label", "id_of"), FORMATS)
async def test_each_format_loads_once_and_reloads_as_a_no_op(
    tmp_path: Path,
    database_url: str,
    documents_engine: AsyncEngine,
    build: Callable[..., Any],
    label: str,
    id_of: Callable[[str], str],
) -> None:
    path = written(tmp_path, build(BOOKS, AUTHORS))

    first = await run_cli_async(tmp_path, "documents", "load", str(path), DATABASE_URL=database_url)

    assert first.returncode == 0, first.stderr
    assert first.stdout == f"documents: 2 loaded, 0 already stored, from {path} ({label})\n"
    assert await stored(documents_engine) == {id_of(BOOKS): BOOKS, id_of(AUTHORS): AUTHORS}

    path = written(tmp_path, build(BOOKS, AUTHORS, NAMED))
    second = await run_cli_async(
        tmp_path, "documents", "load", str(path), DATABASE_URL=database_url
    )

    assert second.returncode == 0, second.stderr
    assert second.stdout == f"documents: 1 loaded, 2 already stored, from {path} ({label})\n"
    assert len(await stored(documents_engine)) == 3


async def test_a_bad_file_is_one_line_and_stores_nothing(
    tmp_path: Path, database_url: str, documents_engine: AsyncEngine
) -> None:
    manifest = codegen_manifest(BOOKS)
    manifest[sha256(AUTHORS)] = NAMED
    path = written(tmp_path, manifest)

    finished = await run_cli_async(
        tmp_path, "documents", "load", str(path), DATABASE_URL=database_url
    )

    assert finished.returncode == 1
    assert single_error_line(finished) == (
        f"error: {path}: entry '{sha256(AUTHORS)}': the hash is not the text's sha256,"
        f" which is {sha256(NAMED)}"
    )
    assert finished.stdout == ""
    assert await stored(documents_engine) == {}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "error: cannot read {path}: No such file or directory"),
        (b"<html>", "error: {path}: not JSON: unexpected character"),
        (b"[1, 2]", "error: {path}: not a persisted-documents manifest: expected"),
    ],
)
async def test_a_file_that_is_no_manifest_is_one_line(
    tmp_path: Path, database_url: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_bytes(content)

    finished = await run_cli_async(
        tmp_path, "documents", "load", str(path), DATABASE_URL=database_url
    )

    assert finished.returncode == 1
    assert single_error_line(finished).startswith(expected.format(path=path))


async def test_a_conflict_with_a_stored_document_is_one_line(
    tmp_path: Path, database_url: str, documents_engine: AsyncEngine
) -> None:
    relay_id = md5(BOOKS)
    first = written(tmp_path, {relay_id: BOOKS})
    assert (
        await run_cli_async(tmp_path, "documents", "load", str(first), DATABASE_URL=database_url)
    ).returncode == 0
    changed = written(tmp_path, {relay_id: AUTHORS, md5(NAMED): NAMED})

    finished = await run_cli_async(
        tmp_path, "documents", "load", str(changed), DATABASE_URL=database_url
    )

    assert single_error_line(finished) == (
        f"error: relay:{relay_id} is stored already, with other text"
    )
    assert await stored(documents_engine) == {f"relay:{relay_id}": BOOKS}


async def test_a_document_over_the_byte_limit_is_one_line(
    tmp_path: Path, database_url: str, documents_engine: AsyncEngine
) -> None:
    path = written(tmp_path, codegen_manifest(BOOKS, AUTHORS))

    finished = await run_cli_async(
        tmp_path,
        "documents",
        "load",
        str(path),
        DATABASE_URL=database_url,
        PERSISTED_DOCUMENTS_MAX_BYTES=str(len(BOOKS) - 1),
    )

    assert single_error_line(finished) == (
        f"error: {path}: entry '{sha256(BOOKS)}': the document is {len(BOOKS)} bytes,"
        f" over the limit of {len(BOOKS) - 1} (PERSISTED_DOCUMENTS_MAX_BYTES)"
    )
    assert await stored(documents_engine) == {}


async def test_loading_into_an_unmigrated_database_says_to_migrate(
    tmp_path: Path, postgres_admin_url: str
) -> None:
    path = written(tmp_path, codegen_manifest(BOOKS))
    url = await create_database(postgres_admin_url, prefix="catalog_test_unmigrated")
    try:
        finished = await run_cli_async(tmp_path, "documents", "load", str(path), DATABASE_URL=url)
    finally:
        await drop_database(postgres_admin_url, url)

    assert single_error_line(finished) == (
        "error: the database is not migrated: run python -m api migrate"
    )
