"""`python -m api schema-diff --against REF`: breaking GraphQL changes fail unless accepted."""

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from api.cli import cmd_schema_diff
from tests.test_cli import COMMITTED_SCHEMA, Finished, run_cli

CURRENT = COMMITTED_SCHEMA.read_text()
AUTHOR_FIELDS = "  name: String!\n  bio: String\n  country: String\n"
ONE_AUTHOR = "author(id: ID!): Author"
# Author.books's arguments, after its description (Publisher.books has the same arguments).
BOOKS_ORDER = (
    '"""The author\'s books, oldest first unless ordered otherwise."""\n'
    "  books(first: Int = null, after: String = null, last: Int = null,"
    " before: String = null, orderBy: BookOrderBy = ID_ASC)"
)
REMOVED = "Field Author.penName was removed."


def edited(old: str, new: str) -> str:
    assert CURRENT.count(old) == 1, old
    return CURRENT.replace(old, new)


def git(repository: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repository,
        check=True,
        capture_output=True,
    )


def repository_with(tmp_path: Path, schema: str, accepted: str | None = None) -> Path:
    """A git repository whose last commit holds `schema` as schema.graphql."""
    repository = tmp_path / "repo"
    repository.mkdir()
    git(repository, "init", "--quiet")
    (repository / "schema.graphql").write_text(schema)
    git(repository, "add", "schema.graphql")
    git(repository, "commit", "--quiet", "-m", "the deployed schema")
    if accepted is not None:
        (repository / "schema-changes.toml").write_text(accepted)
    return repository


@pytest.fixture
def schema_diff(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Finished]:
    """The command's handler run in this process (one test runs the real command)."""

    def run(repository: Path, ref: str = "HEAD") -> Finished:
        monkeypatch.chdir(repository)
        try:
            returncode = cmd_schema_diff(argparse.Namespace(against=ref))
        except SystemExit as stopped:
            print(stopped.code, file=sys.stderr)
            returncode = 1
        captured = capsys.readouterr()
        return Finished(returncode, captured.out, captured.err)

    return run


def test_the_committed_schema_has_no_changes(
    tmp_path: Path, schema_diff: Callable[..., Finished]
) -> None:
    finished = schema_diff(repository_with(tmp_path, CURRENT))

    assert finished.returncode == 0, finished
    assert finished.stdout == "schema-diff: no unaccepted breaking change against HEAD\n"


def test_a_removed_field_fails(tmp_path: Path, schema_diff: Callable[..., Finished]) -> None:
    deployed = edited(AUTHOR_FIELDS, AUTHOR_FIELDS + "  penName: String\n")

    finished = schema_diff(repository_with(tmp_path, deployed))

    assert finished.returncode == 1, finished
    assert finished.stdout.splitlines() == [f"breaking: FIELD_REMOVED: {REMOVED}"]
    assert "1 breaking change(s) against HEAD" in finished.stderr


def test_a_new_required_argument_fails(
    tmp_path: Path, schema_diff: Callable[..., Finished]
) -> None:
    deployed = edited(ONE_AUTHOR, "author: Author")

    finished = schema_diff(repository_with(tmp_path, deployed))

    assert finished.returncode == 1, finished
    assert finished.stdout.splitlines() == [
        "breaking: REQUIRED_ARG_ADDED: A required argument Query.author(id:) was added."
    ]


def test_an_added_optional_field_passes(
    tmp_path: Path, schema_diff: Callable[..., Finished]
) -> None:
    deployed = edited(AUTHOR_FIELDS, AUTHOR_FIELDS.replace("  country: String\n", ""))

    finished = schema_diff(repository_with(tmp_path, deployed))

    assert finished.returncode == 0, finished
    assert finished.stdout == "schema-diff: no unaccepted breaking change against HEAD\n"


def test_a_dangerous_change_is_printed_and_passes(
    tmp_path: Path, schema_diff: Callable[..., Finished]
) -> None:
    deployed = edited(BOOKS_ORDER, BOOKS_ORDER.replace("ID_ASC", "ID_DESC"))

    finished = schema_diff(repository_with(tmp_path, deployed))

    assert finished.returncode == 0, finished
    [change, summary] = finished.stdout.splitlines()
    assert change == (
        "dangerous: ARG_DEFAULT_VALUE_CHANGE: Author.books(orderBy:) has changed defaultValue"
        " from ID_DESC to ID_ASC."
    )
    assert summary == "schema-diff: no unaccepted breaking change against HEAD"


@pytest.mark.parametrize(
    ("reason", "returncode"),
    [("selected by no client for 90 days (request logs)", 0), ("", 1)],
    ids=["with-reason", "without-reason"],
)
def test_a_breaking_change_passes_only_when_accepted_with_a_reason(
    tmp_path: Path, reason: str, returncode: int, schema_diff: Callable[..., Finished]
) -> None:
    deployed = edited(AUTHOR_FIELDS, AUTHOR_FIELDS + "  penName: String\n")
    accepted = f'[[accepted]]\nchange = "{REMOVED}"\nreason = "{reason}"\n'

    finished = schema_diff(repository_with(tmp_path, deployed, accepted))

    assert finished.returncode == returncode, finished
    if reason:
        assert f"breaking: FIELD_REMOVED: {REMOVED} (accepted: {reason})" in finished.stdout


def test_an_unknown_ref_is_one_line(tmp_path: Path, schema_diff: Callable[..., Finished]) -> None:
    finished = schema_diff(repository_with(tmp_path, CURRENT), "HEAD~5")

    assert finished.returncode == 1
    assert finished.stderr == "error: no commit 'HEAD~5' in {} (a shallow clone?)\n".format(
        tmp_path / "repo"
    )


def test_a_ref_without_the_schema_file_is_a_note(
    tmp_path: Path, schema_diff: Callable[..., Finished]
) -> None:
    repository = repository_with(tmp_path, CURRENT)
    git(repository, "rm", "--quiet", "schema.graphql")
    git(repository, "commit", "--quiet", "-m", "no schema")

    finished = schema_diff(repository)

    assert finished.returncode == 0, finished
    assert finished.stdout == "note: HEAD has no schema.graphql; nothing to compare\n"


def test_the_command_runs_as_a_user_runs_it(tmp_path: Path) -> None:
    deployed = edited(ONE_AUTHOR, "author: Author")

    finished = run_cli(repository_with(tmp_path, deployed), "schema-diff", "--against", "HEAD")

    assert finished.returncode == 1, finished
    assert "REQUIRED_ARG_ADDED" in finished.stdout
