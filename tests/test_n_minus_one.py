"""N-1: the release still running during a deploy serves a database migrated to this head.

Rolling deploys migrate first, then replace replicas one by one: for a while the previous
release's code runs against the new schema. "Previous release" here is the code just before
the newest revision added to alembic/versions/ on main's own line of commits (the first
parent of the commit, or merge, that added it; HEAD
itself when the working tree has revisions not committed yet). That code is checked out in a git
worktree and served from it, in an environment built from its own lock file
(requirements/run.txt) as its image would be: a package this release dropped is still there
for it. Its reads and writes must work.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.db.migrations import PROJECT_ROOT
from tests.graphql_client import GraphQLClient
from tests.served import served_from
from tests.test_migrations import fresh_url, upgrade

# `make test-fast` leaves these out: builds and runs the previous release against this head.
pytestmark = pytest.mark.slow

__all__ = ["fresh_url"]

VERSIONS = "alembic/versions"


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def previous_release() -> tuple[str | None, str]:
    """The commit the running release is built from, or None and the reason there is none."""
    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        return None, "not a git checkout"
    if git("status", "--porcelain", "--", VERSIONS).stdout.strip():
        return "HEAD", "revisions not committed yet: HEAD runs on the schema before them"
    # The newest commit of main's own line (merges compared with their first parent: a
    # feature branch's commits were never released) that added a revision; an edit to an
    # existing one is no new release.
    # Revisions renumbered before they were ever released leave commits whose files this
    # head no longer carries: the previous release is the newest one whose revisions it does.
    added = git(
        "log", "--first-parent", "-m", "--diff-filter=A", "--format=%H", "HEAD",
        "--", VERSIONS,
    )  # fmt: skip
    commits = added.stdout.split()
    if not commits:
        return None, f"no commit changed {VERSIONS}"
    here = revision_files(PROJECT_ROOT)
    for newest in commits:
        parent = git("rev-parse", "--verify", "--quiet", f"{newest}^")
        if parent.returncode != 0:
            return None, f"{newest[:10]} added {VERSIONS} and has no parent here (shallow clone?)"
        listed = git("ls-tree", "--name-only", parent.stdout.strip(), f"{VERSIONS}/")
        files = {line.rsplit("/", 1)[-1] for line in listed.stdout.split() if line.endswith(".py")}
        if files < here:
            return parent.stdout.strip(), f"the parent of {newest[:10]}, a revision added"
    return None, "no earlier release carries only revisions this head has"


LOCK = "requirements/run.txt"


def release_python(checkout: Path, where: Path) -> str:
    """A Python with the release's locked packages (uv, from its cache when it can), or this
    environment's for a release from before the lock file."""
    lock = checkout / LOCK
    if not lock.exists():
        return sys.executable
    uv = str(Path(sys.executable).with_name("uv"))
    venv = where / "venv"
    for command in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "--require-hashes", "--no-deps", "-r", str(lock)],
    ):  # fmt: skip
        built = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        assert built.returncode == 0, built.stderr
    return str(venv / "bin" / "python")


@pytest.fixture
def old_code(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    commit, why = previous_release()
    if commit is None:
        pytest.skip(f"no previous release to check against: {why}")
    checkout = tmp_path / "previous-release"
    added = git("worktree", "add", "--detach", "--quiet", str(checkout), commit)
    assert added.returncode == 0, added.stderr
    try:
        python = release_python(checkout, tmp_path)
        imported = subprocess.run(
            [python, "-c", "import api; print(api.__file__)"],
            cwd=checkout,
            env={"PYTHONPATH": str(checkout)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert imported.stdout.startswith(str(checkout)), imported  # not this checkout's
        yield checkout, python
    finally:
        git("worktree", "remove", "--force", str(checkout))


def revision_files(root: Path) -> set[str]:
    return {path.name for path in (root / VERSIONS).glob("*.py")}


async def payload(client: GraphQLClient, query: str, variables: dict[str, Any]) -> Any:
    data = await client.execute(query, variables)
    [result] = data.values()
    assert result["userErrors"] == [], result
    return result


async def test_the_previous_release_reads_and_writes_on_this_head(
    old_code: tuple[Path, str], fresh_url: str
) -> None:
    code, python = old_code
    assert revision_files(code) < revision_files(PROJECT_ROOT), "not one release behind"
    await upgrade(fresh_url)

    async with served_from(code, python, DATABASE_URL=fresh_url) as server:
        client = GraphQLClient(server.http)
        author = await payload(
            client,
            "mutation($input: CreateAuthorInput!) { createAuthor(input: $input) {"
            " author { id name } userErrors { message } } }",
            {"input": {"name": "Ursula K. Le Guin", "bio": "Earthsea"}},
        )
        author_id = author["author"]["id"]
        book = await payload(
            client,
            "mutation($input: CreateBookInput!) { createBook(input: $input) {"
            " book { id title } userErrors { message } } }",
            {"input": {"authorId": author_id, "title": "A Wizard of Earthsea"}},
        )
        await payload(
            client,
            "mutation($input: UpdateAuthorInput!) { updateAuthor(input: $input) {"
            " author { id } userErrors { message } } }",
            {"input": {"id": author_id, "bio": "Earthsea and Hainish"}},
        )
        read = await client.execute(
            "{ authors(first: 5) { totalCount edges { node {"
            " name bio books(first: 5) { totalCount edges { node { title } } } } } } }"
        )
        deleted = await payload(
            client,
            "mutation($input: DeleteBookInput!) { deleteBook(input: $input) {"
            " book { title } userErrors { message } } }",
            {"input": {"id": book["book"]["id"]}},
        )

    assert read["authors"]["totalCount"] == 1
    [edge] = read["authors"]["edges"]
    assert edge["node"]["name"] == "Ursula K. Le Guin"
    assert edge["node"]["bio"] == "Earthsea and Hainish"
    assert edge["node"]["books"]["edges"] == [{"node": {"title": "A Wizard of Earthsea"}}]
    assert deleted["book"]["title"] == "A Wizard of Earthsea"
