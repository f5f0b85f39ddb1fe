"""W8: live updates, from a write in one process to an event in another.

A subscriber process (bench/live_clients.py) holds the subscriptions over WebSocket; this
process writes books over HTTP at a steady rate, each title carrying its send time, and the
subscribers record each event's delay. Reported: events delivered against expected, delay
p50 and p99, the API's RSS per subscriber, and its database connections before and after
subscribing (they must not grow).
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import asyncpg
import httpx

from api.catalog.ids import encode_id
from bench.sampling import rss_bytes
from bench.servers import PROJECT_ROOT, BenchError, Server

CREATE = "mutation W8($input: CreateBookInput!) { createBook(input: $input) { book { id } } }"
OPEN_GAUGE = "live_subscriptions "  # the API's /metrics line
CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"


@dataclass(frozen=True)
class Scenario:
    name: str
    subscribers: int
    authors: int  # distinct authors followed; subscribers spread evenly over them
    writes_per_second: float
    p99_target_ms: float
    per_connection: int = 100  # subscriptions per WebSocket connection

    def describe(self) -> str:
        return (
            f"{self.subscribers:,} subscribers on {self.authors:,} author filter(s), "
            f"{self.writes_per_second:g} writes/s"
        )


SPREAD = Scenario("spread", 10_000, 1_000, 100.0, 250.0)
BROADCAST = Scenario("broadcast", 2_000, 1, 5.0, 500.0)
SCENARIOS = (SPREAD, BROADCAST)
RSS_PER_SUBSCRIBER_TARGET = 30 * 1024


@dataclass
class LiveResult:
    scenario: str
    description: str
    writes: int
    expected: int
    delivered: int
    p50_ms: float
    p99_ms: float
    p99_target_ms: float
    rss_per_subscriber_bytes: float
    connections_before: int
    connections_after: int
    failed_connections: int

    @property
    def holds(self) -> bool:
        return (
            self.delivered == self.expected
            and self.p99_ms <= self.p99_target_ms
            and self.connections_after <= self.connections_before
            and self.failed_connections == 0
            and (
                self.scenario != SPREAD.name
                or self.rss_per_subscriber_bytes <= RSS_PER_SUBSCRIBER_TARGET
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}

    def line(self) -> str:
        return (
            f"{self.delivered:,}/{self.expected:,} events  p50 {self.p50_ms:6.1f} ms  "
            f"p99 {self.p99_ms:6.1f} ms (target {self.p99_target_ms:g})  "
            f"{self.rss_per_subscriber_bytes / 1024:5.1f} KB RSS/subscriber  "
            f"DB connections {self.connections_before} -> {self.connections_after}  "
            f"{'holds' if self.holds else 'MISSES'}"
        )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _connections(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(CONNECTIONS))
    finally:
        await connection.close()


async def _write(api: Server, authors: list[str], rate: float, seconds: float) -> list[str]:
    """createBook at `rate` per second for `seconds`, round robin over `authors`; the
    author of each write, in order."""
    written: list[str] = []
    interval = 1.0 / rate
    async with httpx.AsyncClient(timeout=30) as http:
        pending: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        for number in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + number * interval - time.monotonic()))
            author = authors[number % len(authors)]
            written.append(author)
            body = {
                "query": CREATE,
                "variables": {
                    "input": {"authorId": author, "title": f"w8 {number} {time.time_ns()}"}
                },
            }

            async def send(payload: dict[str, Any] = body) -> None:
                response = await http.post(api.graphql_url, json=payload)
                if response.status_code != 200 or "errors" in response.json():
                    raise BenchError(f"W8's write failed: {response.text[:300]}")

            task = asyncio.create_task(send())
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    return written


def _wait_until_subscribed(api: Server, subscribers: int, patience: float = 120.0) -> None:
    """Until the API holds every subscription: the client has sent them all, but the server
    may still be opening them (each through the front door), and a write sent meanwhile
    would wait behind that work and count it as delivery delay."""
    deadline = time.monotonic() + patience
    metrics = api.graphql_url.replace("/graphql", "/metrics")
    while time.monotonic() < deadline:
        text = httpx.get(metrics, timeout=10).text
        held = next(
            (float(line.split()[1]) for line in text.splitlines() if line.startswith(OPEN_GAUGE)),
            0.0,
        )
        if held >= subscribers:
            return
        time.sleep(0.2)
    raise BenchError(f"the API did not hold {subscribers} subscriptions within {patience:g} s")


def measure_live(api: Server, database_url: str, scenario: Scenario, seconds: float) -> LiveResult:
    """One scenario against a running API whose catalogue has at least `authors` authors."""
    followed = [encode_id("Author", n + 1) for n in range(scenario.authors)]
    filters = [{"authorId": followed[n % len(followed)]} for n in range(scenario.subscribers)]
    plan = {"filters": filters, "per_connection": scenario.per_connection}
    connections_before = asyncio.run(_connections(database_url))
    rss_before = rss_bytes(api.pid)
    url = api.graphql_url.replace("http://", "ws://")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as plan_file:
        json.dump(plan, plan_file)
    clients = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "bench.live_clients", url, plan_file.name],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert clients.stdout is not None
        assert clients.stdin is not None
        line = clients.stdout.readline().strip()
        if line != "ready":
            raise BenchError(f"W8's subscribers did not start: {line!r}")
        _wait_until_subscribed(api, scenario.subscribers)
        rss_after = rss_bytes(api.pid)
        connections_after = asyncio.run(_connections(database_url))
        written = asyncio.run(_write(api, followed, scenario.writes_per_second, seconds))
        time.sleep(3.0)  # the last events' way to the subscribers
        clients.stdin.write("stop\n")
        clients.stdin.flush()
        tally = json.loads(clients.stdout.readline())
    finally:
        clients.kill()
        os.unlink(plan_file.name)
    followers: dict[str, int] = {}
    for condition in filters:
        followers[condition["authorId"]] = followers.get(condition["authorId"], 0) + 1
    delays_ms = [delay / 1e6 for delay in tally["delays_ns"]]
    return LiveResult(
        scenario=scenario.name,
        description=scenario.describe(),
        writes=len(written),
        expected=sum(followers[author] for author in written),
        delivered=len(delays_ms),
        p50_ms=statistics.median(delays_ms) if delays_ms else float("nan"),
        p99_ms=percentile(delays_ms, 0.99),
        p99_target_ms=scenario.p99_target_ms,
        rss_per_subscriber_bytes=(rss_after - rss_before) / scenario.subscribers,
        connections_before=connections_before,
        connections_after=connections_after,
        failed_connections=tally["failed_connections"],
    )


@dataclass
class LiveResults:
    """W8's scenarios, for the report."""

    seconds: float
    results: list[LiveResult]

    def checks(self) -> list[tuple[str, bool, str]]:
        return [
            (f"W8 {r.scenario}: every event, p99 ≤ {r.p99_target_ms:g} ms", r.holds, r.line())
            for r in self.results
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "rss_per_subscriber_target_bytes": RSS_PER_SUBSCRIBER_TARGET,
            "scenarios": [r.as_dict() for r in self.results],
        }

    def markdown(self) -> list[str]:
        lines = [
            "",
            "## W8: live updates",
            "",
            "| scenario | load | events | p50 ms | p99 ms (target) | RSS/subscriber | "
            "DB connections | holds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.scenario} | {r.description} | {r.delivered:,}/{r.expected:,} | "
                f"{r.p50_ms:.1f} | {r.p99_ms:.1f} ({r.p99_target_ms:g}) | "
                f"{r.rss_per_subscriber_bytes / 1024:.1f} KB | "
                f"{r.connections_before} → {r.connections_after} | "
                f"{'yes' if r.holds else 'NO'} |"
            )
        return lines

    @property
    def notes(self) -> list[str]:
        return [
            f"W8: a subscriber process holds the subscriptions ({SPREAD.per_connection} per "
            "graphql-transport-ws connection); this process writes books over HTTP at a steady "
            f"rate for {self.seconds:g} s, each title carrying its send time; an event's delay "
            "is its receipt time minus that send time (the write's own latency included). RSS "
            "per subscriber: the API's RSS after subscribing minus before, over subscribers. "
            "Spread targets ≤ 30 KB RSS per subscriber.",
        ]


def scaled(scenario: Scenario, scale: float, authors: int) -> Scenario:
    """A smaller run of the same shape (the tests' tiny catalogue); targets unchanged."""
    if scale == 1.0 and scenario.authors <= authors:
        return scenario
    return replace(
        scenario,
        subscribers=max(1, round(scenario.subscribers * scale)),
        authors=max(1, min(authors, round(scenario.authors * scale))),
        writes_per_second=max(1.0, scenario.writes_per_second * scale),
    )


def run_live(
    api: Server, database_url: str, seconds: float, scale: float, authors: int
) -> LiveResults:
    """Both scenarios; `scale` shrinks subscribers, filters and writes (1: the targets')."""
    results = []
    for scenario in (scaled(s, scale, authors) for s in SCENARIOS):
        print(f"W8 {scenario.name}: {scenario.describe()}", flush=True)
        result = measure_live(api, database_url, scenario, seconds)
        print(f"  {result.line()}", flush=True)
        results.append(result)
    return LiveResults(seconds, results)
