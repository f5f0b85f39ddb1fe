"""schema.graphql at the project root is the printed schema, and the drift check can fail."""

import difflib
from pathlib import Path

import strawberry

from api.cli import SCHEMA_FILE, build_parser
from api.db.migrations import PROJECT_ROOT
from api.graphql.queries import Query
from api.graphql.schema import Mutation, schema
from api.graphql.subscriptions import Subscription


def printed() -> str:
    return schema.as_str() + "\n"


def export_schema_check(path: Path) -> int:
    args = build_parser().parse_args(["export-schema", "--check", "--output", str(path)])
    return int(args.handler(args))


def test_schema_file_is_the_printed_schema() -> None:
    assert SCHEMA_FILE == PROJECT_ROOT / "schema.graphql"
    on_disk = SCHEMA_FILE.read_text()
    assert "type Query" in on_disk
    assert on_disk == printed(), "".join(
        difflib.unified_diff(
            on_disk.splitlines(keepends=True),
            printed().splitlines(keepends=True),
            "schema.graphql",
            "schema.as_str()",
        )
    )
    assert export_schema_check(SCHEMA_FILE) == 0


def test_a_changed_schema_prints_differently(tmp_path: Path) -> None:
    @strawberry.type(name="Query")
    class QueryWithExtraField(Query):
        extra_field: str = "drift"

    changed = (
        strawberry.Schema(
            query=QueryWithExtraField, mutation=Mutation, subscription=Subscription
        ).as_str()
        + "\n"
    )
    assert changed != printed()
    diff = list(difflib.ndiff(printed().splitlines(), changed.splitlines()))
    assert [line for line in diff if line.startswith("- ")] == []
    assert [line[2:].strip() for line in diff if line.startswith("+ ")] == ["extraField: String!"]

    stale = tmp_path / "schema.graphql"
    stale.write_text(changed)
    assert export_schema_check(stale) == 1
    assert export_schema_check(tmp_path / "missing.graphql") == 1
    stale.write_text(printed())
    assert export_schema_check(stale) == 0
