"""Breaking GraphQL changes, caught before the frontends already deployed meet them.

The schema the code builds is compared with `schema.graphql` as committed at a git ref, by
graphql-core's own `find_breaking_changes` and `find_dangerous_changes`. A breaking change
ships only when `schema-changes.toml` accepts it, by its exact description, with a reason:

    [[accepted]]
    change = "Field Author.penName was removed."
    reason = "deprecated in 2026-09; no client has selected it since (request logs)"
"""

import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from graphql import GraphQLSchema, build_schema, find_breaking_changes, find_dangerous_changes

SCHEMA_FILE = "schema.graphql"
ACCEPTED_FILE = "schema-changes.toml"
MIN_REASON = 10


class SchemaDiffError(Exception):
    """The comparison cannot be made; the message says why in one line."""


class SchemaChange(NamedTuple):
    """One change between two schemas, as graphql-core names it; printed `severity: kind: …`."""

    breaking: bool
    kind: str
    description: str

    def __str__(self) -> str:
        severity = "breaking" if self.breaking else "dangerous"
        return f"{severity}: {self.kind}: {self.description}"


def schema_changes(old: GraphQLSchema, new: GraphQLSchema) -> list[SchemaChange]:
    breaking = [
        SchemaChange(True, change.type.name, change.description)
        for change in find_breaking_changes(old, new)
    ]
    dangerous = [
        SchemaChange(False, change.type.name, change.description)
        for change in find_dangerous_changes(old, new)
    ]
    return breaking + dangerous


def committed_schema(ref: str, repository: Path) -> str | None:
    """`schema.graphql` at `ref`; None when that commit has no such file."""
    if ref.startswith("-"):
        raise SchemaDiffError(f"{ref!r} is not a git ref")
    resolved = _git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise SchemaDiffError(f"no commit {ref!r} in {repository} (a shallow clone?)")
    shown = _git(repository, "show", f"{ref}:{SCHEMA_FILE}")
    return shown.stdout if shown.returncode == 0 else None


def _git(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 (fixed program, arguments never through a shell)
            ["git", *args],  # noqa: S607 (git from PATH, as a developer runs it)
            cwd=repository,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        raise SchemaDiffError("git is not installed") from None


def accepted_changes(path: Path) -> dict[str, str]:
    """description -> reason for each accepted change that gives a reason."""
    if not path.exists():
        return {}
    try:
        entries = tomllib.loads(path.read_text()).get("accepted", [])
    except tomllib.TOMLDecodeError as error:
        raise SchemaDiffError(f"{path.name}: {error}") from None
    if not isinstance(entries, list):
        raise SchemaDiffError(f"{path.name}: 'accepted' must be a list of [[accepted]] tables")
    accepted = {}
    for entry in entries:
        change, reason = entry.get("change"), entry.get("reason")
        if isinstance(change, str) and isinstance(reason, str) and len(reason) >= MIN_REASON:
            accepted[change] = reason
    return accepted


@dataclass(frozen=True)
class SchemaDiff:
    changes: list[SchemaChange]
    accepted: dict[str, str]

    @property
    def refused(self) -> list[SchemaChange]:
        return [c for c in self.changes if c.breaking and c.description not in self.accepted]

    def lines(self) -> list[str]:
        lines = []
        for change in self.changes:
            reason = self.accepted.get(change.description) if change.breaking else None
            lines.append(f"{change} (accepted: {reason})" if reason else str(change))
        return lines


def diff_against(ref: str, new_sdl: str, where: Path) -> SchemaDiff | None:
    """Against the repository `where` is in; None when `ref` has no schema.graphql."""
    toplevel = _git(where, "rev-parse", "--show-toplevel")
    if toplevel.returncode != 0:
        raise SchemaDiffError(f"{where} is not in a git repository")
    repository = Path(toplevel.stdout.strip())
    old_sdl = committed_schema(ref, repository)
    if old_sdl is None:
        return None
    try:
        old = build_schema(old_sdl)
    except Exception as error:
        raise SchemaDiffError(f"{SCHEMA_FILE} at {ref} does not parse: {error}") from None
    return SchemaDiff(
        schema_changes(old, build_schema(new_sdl)), accepted_changes(repository / ACCEPTED_FILE)
    )
