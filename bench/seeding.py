"""W7: `seedCatalog` against COPY, rows per second, on fresh rows of the same shape.

Each call writes 1,000 authors with 10 books each (11,000 rows). The API gets them as one
`seedCatalog` request over HTTP; the other side writes the same rows into the same tables with
asyncpg's `copy_records_to_table`, in one transaction per call (the authors' ids reserved from
their sequence first, as a bulk loader must to point the books at them). Every call writes new
names, so neither side is helped by the other's rows. The two sides take turns, a round of
calls each, who goes first alternating, like the wrk workloads: a shared machine's drift falls
on both.
"""

import asyncio
import http.client
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench import sampling
from bench.measure import RunStats
from bench.servers import HOST, BenchError, Server, scrape
from bench.workloads import Workload

SEED_AUTHORS = 1000
SEED_BOOKS_EACH = 10
ROWS_PER_CALL = SEED_AUTHORS * (1 + SEED_BOOKS_EACH)
CALLS_PER_ROUND = 5
CALL_TIMEOUT = 120.0
COUNTRIES = ("Kenya", None, "Japan", "Brazil")
RESERVE_AUTHOR_IDS = (
    "SELECT nextval(pg_get_serial_sequence('authors', 'id')) FROM generate_series(1, $1)"
)


def seed_authors(tag: str) -> list[dict[str, Any]]:
    """One call's authors and books, their names made unique by `tag` (the same length)."""
    return [
        {
            "name": f"Seed {tag} {index:04d}",
            "country": COUNTRIES[index % len(COUNTRIES)],
            "books": [
                {"title": f"Seeded {tag} {index:04d}-{number}", "publishedYear": 1950 + number}
                for number in range(SEED_BOOKS_EACH)
            ],
        }
        for index in range(SEED_AUTHORS)
    ]


def seed_body(workload: Workload, authors: list[dict[str, Any]]) -> bytes:
    payload = {
        "operationName": workload.operation,
        "query": workload.document,
        "variables": {"input": {"authors": authors}},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SeedRound:
    """`calls` seeds of `ROWS_PER_CALL` rows on one side, and what they took."""

    calls_ms: list[float]
    cpu_seconds: float = 0.0
    statements: float = 0.0
    response_bytes: int = 0

    @property
    def rows(self) -> int:
        return ROWS_PER_CALL * len(self.calls_ms)

    @property
    def seconds(self) -> float:
        return sum(self.calls_ms) / 1000

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def api_round(api: Server, workload: Workload, tags: list[str]) -> SeedRound:
    """One request per tag over one keep-alive connection, each timed from send to last byte.

    The bodies are encoded before the clock starts; every answer must hold all the authors
    and no errors.
    """
    bodies = [seed_body(workload, seed_authors(tag)) for tag in tags]
    headers = {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection(HOST, api.port, timeout=CALL_TIMEOUT)
    before = scrape(api)
    cpu_before = sampling.cpu_seconds(api.pid)
    calls = []
    answer = b""
    try:
        for body in bodies:
            started = time.perf_counter()
            connection.request("POST", "/graphql", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            calls.append((time.perf_counter() - started) * 1000)
            check_seeded(response.status, answer)
    finally:
        connection.close()
    cpu = sampling.cpu_seconds(api.pid) - cpu_before
    after = scrape(api)
    return SeedRound(calls, cpu, after.statements - before.statements, len(answer))


def check_seeded(status: int, answer: bytes) -> None:
    payload = json.loads(answer) if status == 200 else None
    seeded = (payload or {}).get("data", {}) or {}
    result = seeded.get("seedCatalog") or {}
    if payload is None or payload.get("errors") or result.get("userErrors"):
        raise BenchError(f"W7 on the API answered {status}: {answer[:500]!r}")
    if len(result.get("authors") or []) != SEED_AUTHORS:
        raise BenchError(f"W7 on the API wrote {len(result.get('authors') or [])} authors")


async def copy_round(url: str, tags: list[str]) -> SeedRound:
    """The same rows, by COPY: per tag, one transaction that reserves the authors' ids and
    copies the authors, then their books. The records are built before the clock starts."""
    batches = []
    for tag in tags:
        given = seed_authors(tag)
        batches.append(
            (
                [(a["name"], None, a["country"]) for a in given],
                [[(b["title"], b["publishedYear"]) for b in a["books"]] for a in given],
            )
        )
    connection = await asyncpg.connect(url)
    calls = []
    try:
        for authors, books in batches:
            started = time.perf_counter()
            async with connection.transaction():
                ids = [row[0] for row in await connection.fetch(RESERVE_AUTHOR_IDS, len(authors))]
                await connection.copy_records_to_table(
                    "authors",
                    records=[(key, *row) for key, row in zip(ids, authors, strict=True)],
                    columns=["id", "name", "bio", "country"],
                )
                await connection.copy_records_to_table(
                    "books",
                    records=[
                        (key, *book) for key, own in zip(ids, books, strict=True) for book in own
                    ],
                    columns=["author_id", "title", "published_year"],
                )
            calls.append((time.perf_counter() - started) * 1000)
    finally:
        await connection.close()
    return SeedRound(calls)


def run_stats(server: str, workload: Workload, rounds: list[SeedRound], idle_rss: int) -> RunStats:
    """The rounds of one side as a run: its "requests" are rows, per second rows/s."""
    calls = [ms for r in rounds for ms in r.calls_ms]
    rows = sum(r.rows for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    quantiles = statistics.quantiles(calls, n=100, method="inclusive") if len(calls) > 1 else []

    def percentile(p: int) -> float:
        return quantiles[p - 1] if quantiles else calls[0]

    return RunStats(
        server=server,
        workload=workload.name,
        requests=rows,
        seconds=seconds,
        requests_per_second=rows / seconds if seconds > 0 else 0.0,
        p50_ms=statistics.median(calls),
        p75_ms=percentile(75),
        p90_ms=percentile(90),
        p99_ms=max(calls),
        cpu_ms_per_request=sum(r.cpu_seconds for r in rounds) * 1000 / len(calls),
        idle_rss_mb=idle_rss / (1024 * 1024),
        peak_rss_mb=idle_rss / (1024 * 1024),
        rss_samples=0,
        response_bytes=max(r.response_bytes for r in rounds),
        sql_per_request=sum(r.statements for r in rounds) / len(calls),
        non_2xx=0,
        rounds_requests_per_second=[r.rows_per_second for r in rounds],
    )


def measure_seeding(
    api: Server, url: str, workload: Workload, rounds: int
) -> tuple[RunStats, RunStats]:
    """W7: the API's run and COPY's, `rounds` rounds of `CALLS_PER_ROUND` calls each.

    A warm-up call on each side first (its rows are fresh too), so neither pays for a first
    plan or a cold cache in the measured rounds.
    """
    idle_rss = sampling.rss_bytes(api.pid)
    api_round(api, workload, ["warm-a"])
    asyncio.run(copy_round(url, ["warm-c"]))
    api_rounds: list[SeedRound] = []
    copy_rounds: list[SeedRound] = []
    for number in range(rounds):
        api_tags = [f"a{number:02d}-{call:02d}" for call in range(CALLS_PER_ROUND)]
        copy_tags = [f"c{number:02d}-{call:02d}" for call in range(CALLS_PER_ROUND)]
        for side in ("api", "copy") if number % 2 == 0 else ("copy", "api"):
            if side == "api":
                api_rounds.append(api_round(api, workload, api_tags))
            else:
                copy_rounds.append(asyncio.run(copy_round(url, copy_tags)))
    api.check_alive()
    return run_stats(api.name, workload, api_rounds, idle_rss), run_stats(
        "COPY", workload, copy_rounds, 0
    )
