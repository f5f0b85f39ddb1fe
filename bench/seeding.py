"""W7: `seedCatalog` against COPY, rows per second, on fresh rows of the same shape.

Each call writes 1,000 authors with 10 books each (11,000 rows). The API gets them as one
`seedCatalog` request over HTTP; the other side writes the same rows into the same tables with
asyncpg's `copy_records_to_table`, in one transaction per call (the authors' ids reserved from
their sequence first, as a bulk loader must to point the books at them). Every call writes new
names, so neither side is helped by the other's rows. The two sides take turns, a call each,
who goes first alternating from pair to pair: a shared machine's drift falls on both.
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
CALLS_PER_ROUND = 8
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


class ApiSeeder:
    """`seedCatalog` requests over one keep-alive connection, each timed from send to last
    byte, with the server's CPU over each; every answer must hold all the authors, no error."""

    def __init__(self, api: Server, workload: Workload) -> None:
        self.api = api
        self.workload = workload
        self.connection = http.client.HTTPConnection(HOST, api.port, timeout=CALL_TIMEOUT)

    def call(self, body: bytes) -> tuple[float, float, int]:
        """Milliseconds, server CPU seconds and response bytes of one request."""
        cpu_before = sampling.cpu_seconds(self.api.pid)
        started = time.perf_counter()
        self.connection.request(
            "POST", "/graphql", body=body, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        cpu = sampling.cpu_seconds(self.api.pid) - cpu_before
        check_seeded(response.status, answer)
        return elapsed, cpu, len(answer)

    def close(self) -> None:
        self.connection.close()


def check_seeded(status: int, answer: bytes) -> None:
    payload = json.loads(answer) if status == 200 else None
    seeded = (payload or {}).get("data", {}) or {}
    result = seeded.get("seedCatalog") or {}
    if payload is None or payload.get("errors") or result.get("userErrors"):
        raise BenchError(f"W7 on the API answered {status}: {answer[:500]!r}")
    if len(result.get("authors") or []) != SEED_AUTHORS:
        raise BenchError(f"W7 on the API wrote {len(result.get('authors') or [])} authors")


CopyBatch = tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]]]


def copy_batch(tag: str) -> CopyBatch:
    """The records COPY writes for `tag`: the authors', and each author's books'."""
    given = seed_authors(tag)
    return (
        [(a["name"], None, a["country"]) for a in given],
        [[(b["title"], b["publishedYear"]) for b in a["books"]] for a in given],
    )


async def copy_call(connection: asyncpg.Connection, batch: CopyBatch) -> float:
    """Milliseconds of one transaction that reserves the authors' ids and copies the authors,
    then their books."""
    authors, books = batch
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
            records=[(key, *book) for key, own in zip(ids, books, strict=True) for book in own],
            columns=["author_id", "title", "published_year"],
        )
    return (time.perf_counter() - started) * 1000


async def seed_round(
    api: Server, url: str, workload: Workload, number: int, calls: int
) -> tuple[SeedRound, SeedRound]:
    """`calls` pairs of calls, one each side, who goes first alternating from pair to pair.

    The bodies and records are built before the clock starts.
    """
    bodies = [
        seed_body(workload, seed_authors(f"a{number:02d}-{call:02d}")) for call in range(calls)
    ]
    batches = [copy_batch(f"c{number:02d}-{call:02d}") for call in range(calls)]
    seeder = ApiSeeder(api, workload)
    connection = await asyncpg.connect(url)
    api_ms: list[float] = []
    copy_ms: list[float] = []
    cpu = 0.0
    answer_bytes = 0
    before = scrape(api)
    try:
        for call, (body, batch) in enumerate(zip(bodies, batches, strict=True)):
            for side in ("api", "copy") if (number + call) % 2 == 0 else ("copy", "api"):
                if side == "api":
                    elapsed, spent, answer_bytes = seeder.call(body)
                    api_ms.append(elapsed)
                    cpu += spent
                else:
                    copy_ms.append(await copy_call(connection, batch))
    finally:
        seeder.close()
        await connection.close()
    statements = scrape(api).statements - before.statements
    return SeedRound(api_ms, cpu, statements, answer_bytes), SeedRound(copy_ms)


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
    api: Server, url: str, workload: Workload, rounds: int, calls: int = CALLS_PER_ROUND
) -> tuple[RunStats, RunStats]:
    """W7: the API's run and COPY's, `rounds` rounds of `calls` calls each side.

    A warm-up pair first (fresh rows too), so neither side pays for a first plan or a cold
    cache in the measured rounds.
    """
    idle_rss = sampling.rss_bytes(api.pid)
    asyncio.run(seed_round(api, url, workload, rounds, 1))
    measured = [
        asyncio.run(seed_round(api, url, workload, number, calls)) for number in range(rounds)
    ]
    api.check_alive()
    return (
        run_stats(api.name, workload, [api_side for api_side, _ in measured], idle_rss),
        run_stats("COPY", workload, [copy_side for _, copy_side in measured], 0),
    )
