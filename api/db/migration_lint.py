"""Lint each revision's SQL before it ships: Squawk's rules, plus three that need this project.

Each revision is rendered offline (`alembic upgrade --sql`, from its parent to itself), so
the linter reads exactly the statements migrate would send, env.py's `SET lock_timeout`
included. Squawk (https://squawkhq.com) checks the locks and rewrites; this module adds:

- `drop-mapped-column`: a drop of a column or table that api/db/models.py still maps; the
  running release would fail on it. Drop it in a later release, after the code stops mapping it.
- `lock-timeout`: DDL sent with no lock_timeout, a zero one, or one over 1 s (a revision
  that RESETs or raises it), which would let a queued lock freeze every query on the table.
- `row-counts-lock-order`: a transaction that alters `row_counts` and then locks a counted
  table (a trigger, an ALTER, a plain index build). The counting triggers lock the table and
  then `row_counts`, so under live writes the two orders deadlock; use
  `api.db.counting.install_counting`, which commits each step on its own.

A revision silences a rule only by saying why, in the revision itself:

    SQUAWK_IGNORE = {"require-concurrent-index-creation": "books is created above, empty"}
"""

import ast
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy import MetaData

from alembic import command
from api.db.migrations import PROJECT_ROOT
from api.db.online_ddl import LOCK_TIMEOUT

IGNORE_NAME = "SQUAWK_IGNORE"
MAX_LOCK_TIMEOUT_MS = 1000
# Squawk rules left out, each with the reason; the rest of its default set applies.
EXCLUDED_SQUAWK_RULES = {
    "ban-drop-column": "replaced by drop-mapped-column: dropping an unmapped column is fine",
    "ban-drop-table": "replaced by drop-mapped-column, for the same reason",
    "require-lock-timeout": "replaced by lock-timeout, which also checks the value and RESET",
    "require-statement-timeout": "a statement_timeout would cancel long concurrent index builds",
    "prefer-text-field": "a style choice; the models use VARCHAR(n) for their length limits",
    "prefer-bigint-over-int": "a style choice for the models, not a lock hazard",
    "prefer-bigint-over-smallint": "a style choice for the models, not a lock hazard",
    "prefer-identity": "a style choice for the models, not a lock hazard",
    "prefer-robust-stmts": "migrate retries whole revisions; IF NOT EXISTS would hide drift",
}
DROP_TABLE = re.compile(r"^DROP TABLE (?:IF EXISTS )?(?P<tables>[^;]+)", re.IGNORECASE)
ALTER_TABLE = re.compile(r"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(?P<table>\S+)", re.IGNORECASE)
DROP_COLUMN = re.compile(r"DROP COLUMN (?:IF EXISTS )?(?P<column>\"[^\"]+\"|\w+)", re.IGNORECASE)
SET_LOCK_TIMEOUT = re.compile(
    r"^SET (?:SESSION |LOCAL )?lock_timeout\s*(?:=|TO)\s*'?(?P<value>[^';]+)'?", re.IGNORECASE
)
RESET_LOCK_TIMEOUT = re.compile(
    r"^(RESET lock_timeout|RESET ALL|SET lock_timeout TO DEFAULT)", re.I
)
NOT_DDL = re.compile(
    r"^(SET|RESET|BEGIN|COMMIT|ROLLBACK|INSERT|UPDATE|DELETE|SELECT|--)", re.IGNORECASE
)
TABLE_LOCKED_BY = re.compile(
    r"^(?:ALTER TABLE (?:IF EXISTS )?(?:ONLY )?|LOCK TABLE (?:ONLY )?|TRUNCATE (?:TABLE )?"
    r"|CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER .+? ON |DROP TRIGGER (?:IF EXISTS )?\S+ ON "
    r"|CREATE (?:UNIQUE )?INDEX (?!CONCURRENTLY)(?:IF NOT EXISTS )?\S* ?ON (?:ONLY )?)"
    r"(?P<table>[\w.\"]+)",
    re.IGNORECASE | re.DOTALL,
)
CREATE_TABLE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?(?P<table>[\w.\"]+)", re.IGNORECASE)
COUNTS_TABLE = "row_counts"
DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?\s*$")
UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


class LintUnavailable(Exception):
    """The linter itself cannot run (Squawk missing, a revision that does not render)."""


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Rendered:
    script: Script
    sql: str

    @property
    def file(self) -> str:
        path = Path(self.script.path).resolve()
        return (
            str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)
        )


def lint_revisions(
    config: Config, metadata: MetaData, revisions: Sequence[str] = ()
) -> list[Problem]:
    """Every problem in `revisions` (all of them when empty), sorted by file."""
    scripts = ScriptDirectory.from_config(config)
    chosen = [scripts.get_revision(rev) for rev in revisions] or list(scripts.walk_revisions())
    rendered = [render(config, script) for script in chosen if script is not None]
    problems = squawk(rendered)
    for one in rendered:
        problems += mapped_drops(one, metadata) + lock_timeout_gaps(one)
        problems += row_counts_lock_order(one, metadata)
    return sorted(set(silence(problems, rendered)))


def render(config: Config, script: Script) -> Rendered:
    parent = script.down_revision
    if isinstance(parent, tuple | list):  # a merge: rendered from its first parent
        parent = parent[0]
    config.output_buffer = io.StringIO()
    target = f"{parent}:{script.revision}" if parent else script.revision
    command.upgrade(config, target, sql=True)
    return Rendered(script, config.output_buffer.getvalue())


def squawk_binary() -> str:
    beside_python = Path(sys.executable).with_name("squawk")
    found = str(beside_python) if beside_python.exists() else shutil.which("squawk")
    if not found:
        raise LintUnavailable("squawk is not installed: pip install -e '.[dev]' (squawk-cli)")
    return found


def squawk(rendered: Sequence[Rendered]) -> list[Problem]:
    if not rendered:
        return []
    with tempfile.TemporaryDirectory(prefix="lint-migrations-") as directory:
        files = {}
        for index, one in enumerate(rendered):
            path = Path(directory) / f"{index:04d}_{one.script.revision}.sql"
            path.write_text(one.sql)
            files[str(path)] = one.file
        completed = subprocess.run(  # noqa: S603 (our own arguments, no shell)
            [
                squawk_binary(),
                "--reporter",
                "json",
                "--exclude",
                ",".join(EXCLUDED_SQUAWK_RULES),
                *files,
            ],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    try:
        findings = json.loads(completed.stdout or "[]")
    except json.JSONDecodeError:
        raise LintUnavailable(f"squawk failed: {completed.stderr.strip()[:300]}") from None
    return [
        Problem(files.get(found["file"], found["file"]), found["rule_name"], found["message"])
        for found in findings
    ]


def statements(sql: str) -> list[str]:
    """Alembic's rendering ends each statement with ';' and a line break; comments dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", code + "\n") if part.strip()]


def _name(text: str) -> str:
    return text.strip().strip('"').rpartition(".")[2].strip('"')


def dropped(statement: str) -> Iterator[tuple[str, str | None]]:
    """(table, None) for each table the statement drops, (table, column) for each column."""
    if drop := DROP_TABLE.match(statement):
        tables = re.sub(r"\s+(CASCADE|RESTRICT)\s*$", "", drop["tables"], flags=re.IGNORECASE)
        for table in tables.split(","):
            yield _name(table), None
    elif alter := ALTER_TABLE.match(statement):
        for match in DROP_COLUMN.finditer(statement, alter.end()):
            yield _name(alter["table"]), _name(match["column"])


def mapped_drops(rendered: Rendered, metadata: MetaData) -> list[Problem]:
    mapped = {
        table.name: {column.name for column in table.columns} for table in metadata.sorted_tables
    }
    problems = []
    for statement in statements(rendered.sql):
        for table, column in dropped(statement):
            if table not in mapped or (column is not None and column not in mapped[table]):
                continue
            what = f"table {table}" if column is None else f"column {table}.{column}"
            problems.append(
                Problem(
                    rendered.file,
                    "drop-mapped-column",
                    f"drops {what}, which the code still maps: drop it in a later release,"
                    " once no running code uses it",
                )
            )
    return problems


def lock_timeout_ms(value: str) -> float | None:
    """Postgres' reading of a lock_timeout value (a bare number is milliseconds)."""
    match = DURATION.match(value.strip().lower())
    if not match:
        return None
    return float(match["number"]) * UNIT_MS[match["unit"] or "ms"]


def lock_timeout_gaps(rendered: Rendered) -> list[Problem]:
    problems = []
    timeout_ms: float | None = None
    for statement in statements(rendered.sql):
        if setting := SET_LOCK_TIMEOUT.match(statement):
            timeout_ms = lock_timeout_ms(setting["value"])
        elif RESET_LOCK_TIMEOUT.match(statement):
            timeout_ms = None
        elif not NOT_DDL.match(statement) and not (
            timeout_ms and timeout_ms <= MAX_LOCK_TIMEOUT_MS
        ):
            state = "no lock_timeout" if not timeout_ms else f"lock_timeout {timeout_ms:g} ms"
            head = " ".join(statement.split()[:4])
            problems.append(
                Problem(
                    rendered.file,
                    "lock-timeout",
                    f"{head} … runs with {state}; keep it at {LOCK_TIMEOUT} or less so queued"
                    " DDL cannot hold up the queries behind it",
                )
            )
    return problems


def counted_tables(metadata: MetaData) -> frozenset[str]:
    counts = metadata.tables.get(COUNTS_TABLE)
    if counts is None:
        return frozenset()
    return frozenset(column.name for column in counts.columns if not column.primary_key)


def transactions(sql: str) -> Iterator[list[str]]:
    """The statements of each transaction; one sent outside BEGIN…COMMIT is its own."""
    current: list[str] | None = None
    for statement in statements(sql):
        keyword = statement.split(None, 1)[0].upper()
        if keyword == "BEGIN":
            current = []
        elif keyword in ("COMMIT", "ROLLBACK"):
            if current:
                yield current
            current = None
        elif current is None:
            yield [statement]
        else:
            current.append(statement)
    if current:
        yield current


def row_counts_lock_order(rendered: Rendered, metadata: MetaData) -> list[Problem]:
    counted = counted_tables(metadata) | {table for table, _ in _counting_triggers(rendered.sql)}
    problems = []
    for transaction in transactions(rendered.sql):
        holds_counts = False
        created: set[str] = set()
        for statement in transaction:
            if created_table := CREATE_TABLE.match(statement):
                created.add(_name(created_table["table"]))
                continue
            locked = TABLE_LOCKED_BY.match(statement)
            if locked is None:
                continue
            table = _name(locked["table"])
            if table == COUNTS_TABLE:
                holds_counts = holds_counts or COUNTS_TABLE not in created
            elif holds_counts and table in counted and table not in created:
                problems.append(
                    Problem(
                        rendered.file,
                        "row-counts-lock-order",
                        f"locks {table} after altering {COUNTS_TABLE} in one transaction: it"
                        f" deadlocks with {table}'s counting trigger under live writes; use"
                        " api.db.counting.install_counting (each step committed)",
                    )
                )
    return problems


def _counting_triggers(sql: str) -> Iterator[tuple[str, str]]:
    for statement in statements(sql):
        found = re.search(r"TRIGGER (\w+) .*? ON ([\w.\"]+)", statement, re.IGNORECASE | re.DOTALL)
        if found and found[1].startswith("count_"):
            yield _name(found[2]), found[1]


def declared_ignores(path: str) -> dict[str, str]:
    """The revision's SQUAWK_IGNORE literal: rule -> reason (read, never executed)."""
    tree = ast.parse(Path(path).read_text(), filename=path)
    for node in tree.body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == IGNORE_NAME:
            declared = ast.literal_eval(value)
            if isinstance(declared, dict):
                return {str(rule): str(reason) for rule, reason in declared.items()}
    return {}


def silence(problems: Iterable[Problem], rendered: Sequence[Rendered]) -> list[Problem]:
    """Drop the problems a revision ignores with a reason; an ignore without one is a problem."""
    ignores = {one.file: declared_ignores(one.script.path) for one in rendered}
    kept = []
    for file, declared in ignores.items():
        for rule, reason in declared.items():
            if len(reason.strip()) < 10:
                kept.append(
                    Problem(file, "squawk-ignore", f"{rule} is ignored without a reason; say why")
                )
    for problem in problems:
        reason = ignores.get(problem.file, {}).get(problem.rule, "")
        if len(reason.strip()) < 10:
            kept.append(problem)
    return kept
