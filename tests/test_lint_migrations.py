"""`python -m api lint-migrations`: each risky operation in a scratch revision is flagged."""

from pathlib import Path

import pytest

from api.db.migration_lint import TABLE_LOCKED_BY, Problem, lint_revisions, lock_timeout_ms
from api.db.migrations import PROJECT_ROOT, alembic_config
from api.db.models import Base
from tests.scratch_revisions import ScratchScripts
from tests.test_cli import run_cli_async

# rule -> a revision body that breaks it (and nothing else).
RISKY = {
    "require-concurrent-index-creation": 'op.create_index("ix_books_title", "books", ["title"])',
    "adding-required-field": (
        'op.add_column("authors", sa.Column("rank", sa.Integer(), nullable=False))'
    ),
    "renaming-column": 'op.alter_column("authors", "bio", new_column_name="biography")',
    "renaming-table": 'op.rename_table("books", "volumes")',
    "drop-mapped-column": 'op.drop_column("authors", "country")',
    "constraint-missing-not-valid": (
        'op.create_check_constraint("ck_books_positive_id", "books", "id > 0")'
    ),
    "changing-column-type": 'op.alter_column("authors", "name", type_=sa.Text())',
    "lock-timeout": """
        op.execute("RESET lock_timeout")
        op.add_column("authors", sa.Column("nickname", sa.Text()))
    """,
    # A new counted column, then a trigger on a live counted table, in one transaction.
    "row-counts-lock-order": """
        op.execute("ALTER TABLE row_counts ADD COLUMN IF NOT EXISTS notes bigint")
        op.execute(
            "CREATE OR REPLACE TRIGGER count_notes AFTER INSERT ON books"
            " FOR EACH STATEMENT EXECUTE FUNCTION count_books_rows()"
        )
    """,
}
SAFE = {
    "safe_nickname": 'op.add_column("authors", sa.Column("nickname", sa.Text()))',
    "safe_drop_unmapped": 'op.drop_column("authors", "nickname")',
    "safe_concurrent_index": (
        'online_ddl.create_index_concurrently("ix_books_title", "books", ["title"])'
    ),
    "safe_not_valid_check": (
        'op.execute("ALTER TABLE books ADD CONSTRAINT ck_books_id CHECK (id > 0) NOT VALID")'
    ),
    # The same steps through the helper, each committed on its own; and a new table counted.
    "safe_counting": """
        op.execute("CREATE TABLE notes (id integer PRIMARY KEY)")
        counting.install_counting("notes")
    """,
}
SILENCED = 'op.add_column("authors", sa.Column("rank", sa.Integer(), nullable=False))'


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> ScratchScripts:
    scripts = ScratchScripts(tmp_path_factory.mktemp("lint"))
    for rule, body in RISKY.items():
        scripts.add(f"risky_{rule.replace('-', '_')}", upgrade=body)
    for revision, body in SAFE.items():
        scripts.add(revision, upgrade=body)
    scripts.add(
        "silenced_with_reason",
        upgrade=SILENCED,
        extra='SQUAWK_IGNORE = {"adding-required-field": "authors is empty in this release"}\n',
    )
    scripts.add(
        "silenced_without_reason",
        upgrade=SILENCED,
        extra='SQUAWK_IGNORE = {"adding-required-field": ""}\n',
    )
    scripts.add(
        "lock_timeout_too_long", upgrade=f"op.execute(\"SET lock_timeout = '10s'\")\n{SILENCED}"
    )
    return scripts


def test_a_concurrent_index_build_takes_no_lock_the_order_rule_counts() -> None:
    """A plain build locks its table in the transaction; a concurrent one runs outside it."""
    assert TABLE_LOCKED_BY.match("CREATE INDEX ix_a ON books (title)")
    assert not TABLE_LOCKED_BY.match("CREATE INDEX CONCURRENTLY ix_a ON books (title)")


def lint(scripts: ScratchScripts, *revisions: str) -> list[Problem]:
    return lint_revisions(scripts.config(), Base.metadata, revisions)


def test_the_projects_own_revisions_pass() -> None:
    assert lint_revisions(alembic_config(quiet=True), Base.metadata) == []


@pytest.mark.parametrize("rule", sorted(RISKY))
def test_each_risky_operation_is_flagged(scripts: ScratchScripts, rule: str) -> None:
    revision = f"risky_{rule.replace('-', '_')}"

    problems = lint(scripts, revision)

    assert {problem.rule for problem in problems} == {rule}, problems
    assert {problem.file for problem in problems} == {str(scripts.path_of(revision))}


@pytest.mark.parametrize("revision", sorted(SAFE))
def test_the_safe_way_passes(scripts: ScratchScripts, revision: str) -> None:
    assert lint(scripts, revision) == []


def test_a_rule_is_silenced_only_with_a_reason(scripts: ScratchScripts) -> None:
    assert lint(scripts, "silenced_with_reason") == []

    problems = lint(scripts, "silenced_without_reason")
    assert sorted(problem.rule for problem in problems) == [
        "adding-required-field",
        "squawk-ignore",
    ]


def test_a_lock_timeout_over_a_second_is_flagged(scripts: ScratchScripts) -> None:
    problems = lint(scripts, "lock_timeout_too_long")

    assert {problem.rule for problem in problems} == {"lock-timeout", "adding-required-field"}
    [timeout] = [problem for problem in problems if problem.rule == "lock-timeout"]
    assert "lock_timeout 10000 ms" in timeout.message


@pytest.mark.parametrize(
    ("value", "milliseconds"),
    [("1s", 1000), ("500ms", 500), ("250", 250), ("0", 0), ("2min", 120_000), ("x", None)],
)
def test_lock_timeout_values_read_as_postgres_does(value: str, milliseconds: float | None) -> None:
    assert lock_timeout_ms(value) == milliseconds


async def test_the_command_prints_file_rule_message_and_exits_1(
    scripts: ScratchScripts, tmp_path: Path
) -> None:
    flagged = await run_cli_async(
        tmp_path,
        "lint-migrations",
        "risky_drop_mapped_column",
        "safe_nickname",
        ALEMBIC_CONFIG=str(scripts.ini),
    )

    assert flagged.returncode == 1, flagged
    assert flagged.stdout.splitlines() == [
        f"{scripts.path_of('risky_drop_mapped_column')}: drop-mapped-column: drops column"
        " authors.country, which the code still maps: drop it in a later release, once no"
        " running code uses it"
    ]

    clean = await run_cli_async(tmp_path, "lint-migrations", DATABASE_URL="")
    assert clean.returncode == 0, clean
    assert clean.stdout == "lint-migrations: no problems found\n"
    assert not (PROJECT_ROOT / "alembic" / "versions" / "risky_drop_mapped_column.py").exists()
