"""The plans Postgres really runs for a statement, and how much of a table they touch.

`executed_plans` replays a statement the way the API sends it, as a prepared statement run
several times: Postgres plans the first five executions with the values (custom plans) and
may then switch to one generic plan. `auto_explain` reports every execution's plan with its
actual row counts, so a generic plan that walks a whole table cannot hide behind a good
custom one.
"""

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from tests.sent_sql import SentStatement

# Six executions: five custom plans, then the first one Postgres may choose to make generic.
EXECUTIONS = 6
SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_timing = off",
    "SET auto_explain.log_format = json",
    "SET auto_explain.log_level = notice",
    "SET client_min_messages = notice",
)


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def rows_out(node: dict[str, Any]) -> int:
    return int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))


def rows_read(node: dict[str, Any]) -> int:
    """Rows a scan looked at: those it returned and those its filters threw away."""
    loops = int(node.get("Actual Loops", 1))
    removed = int(node.get("Rows Removed by Filter", 0))
    removed += int(node.get("Rows Removed by Index Recheck", 0))
    return rows_out(node) + removed * loops


@dataclass(frozen=True)
class PlanWork:
    """What one execution did to the tables of interest."""

    plan: dict[str, Any]
    tables: frozenset[str]

    def scans(self) -> list[dict[str, Any]]:
        return [
            node
            for node in nodes(self.plan)
            if node["Node Type"] in SCANS and node.get("Relation Name") in self.tables
        ]

    def sequential_scans(self) -> list[str]:
        return [n["Relation Name"] for n in self.scans() if n["Node Type"] == "Seq Scan"]

    def rows_examined(self) -> int:
        return sum(rows_read(node) for node in self.scans())

    def largest_sort(self) -> int:
        """Rows fed into the biggest Sort node (0 when nothing is sorted)."""
        sorts = [n for n in nodes(self.plan) if n["Node Type"] == "Sort"]
        return max((sum(rows_out(c) for c in n.get("Plans", ())) for n in sorts), default=0)

    def text(self) -> str:
        return json.dumps(self.plan, indent=1)


async def executed_plans(
    dsn: str, statements: list[SentStatement], tables: frozenset[str]
) -> list[tuple[SentStatement, list[PlanWork]]]:
    """Each statement's plans, run EXECUTIONS times as one prepared statement.

    The statements run in order in one transaction, as a request sent them, so that settings
    a request makes for itself (SET LOCAL) apply to the statements after them.
    """
    connection = await asyncpg.connect(dsn)
    reported: list[dict[str, Any]] = []

    def listen(_: object, message: asyncpg.PostgresLogMessage) -> None:
        _, found, plan = message.message.partition("plan:")
        if found:
            reported.append(json.loads(plan))

    connection.add_log_listener(listen)
    try:
        for setting in AUTO_EXPLAIN:
            await connection.execute(setting)
        async with connection.transaction():
            for statement in statements:
                prepared = await connection.prepare(statement.sql)
                for _ in range(EXECUTIONS):
                    await prepared.fetch(*statement.params)
        sent = {statement.sql for statement in statements}
        expected = len(statements) * EXECUTIONS
        for _ in range(200):  # listeners hear of notices a few loop iterations later
            if sum(plan["Query Text"] in sent for plan in reported) >= expected:
                break
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
    # Only the statements themselves (asyncpg's own type introspection is logged too).
    ours = [plan for plan in reported if plan["Query Text"] in sent]
    assert len(ours) == expected, [plan["Query Text"] for plan in reported]
    found = []
    for index, statement in enumerate(statements):
        runs = ours[index * EXECUTIONS : (index + 1) * EXECUTIONS]
        assert all(run["Query Text"] == statement.sql for run in runs), (statement, runs)
        found.append((statement, [PlanWork(run["Plan"], tables) for run in runs]))
    return found
