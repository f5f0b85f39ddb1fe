"""Clients of the running version keep writing and reading while a migration runs.

A deploy migrates first and rolls out the new code afterwards, so during the migration the old
code's statements keep coming: inserts of authors and books, reads by id and by page. Each
client times every statement it sends; the report says how many failed and the longest wait.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

PAUSE = 0.005  # between a client's statements: steady traffic, not a CPU-starving flood
MAX_FAILURES_KEPT = 5

WRITES = (
    (
        "insert author",
        "INSERT INTO authors (name, country) VALUES ($1, 'Norway') RETURNING id",
        lambda rng, top: (f"Migrating author {rng.randrange(10**9)}",),
    ),
    (
        "insert book",
        "INSERT INTO books (title, author_id) VALUES ($1, $2) RETURNING id",
        lambda rng, top: (f"Migrating book {rng.randrange(10**9)}", rng.randint(1, top)),
    ),
)
READS = (
    (
        "author by id",
        "SELECT id, name, country FROM authors WHERE id = $1",
        lambda rng, top: (rng.randint(1, top),),
    ),
    (
        "an author's books",
        "SELECT id, title FROM books WHERE author_id = $1 ORDER BY id LIMIT 10",
        lambda rng, top: (rng.randint(1, top),),
    ),
    (
        "a page of authors",
        "SELECT id, name FROM authors WHERE id > $1 ORDER BY id LIMIT 20",
        lambda rng, top: (rng.randint(1, top),),
    ),
)


@dataclass
class Traffic:
    """What the clients saw while the work ran."""

    statements: int = 0
    failures: int = 0
    failure_examples: list[str] = field(default_factory=list)
    slowest_seconds: float = 0.0
    slowest_statement: str = ""
    work_seconds: float = 0.0

    def record(self, name: str, seconds: float, error: BaseException | None) -> None:
        self.statements += 1
        if seconds > self.slowest_seconds:
            self.slowest_seconds, self.slowest_statement = seconds, name
        if error is not None:
            self.failures += 1
            if len(self.failure_examples) < MAX_FAILURES_KEPT:
                self.failure_examples.append(f"{name}: {error!r}")

    def summary(self) -> str:
        failed = f"{self.failures} failed" + (
            f" (e.g. {self.failure_examples[0]})" if self.failure_examples else ""
        )
        return (
            f"{self.statements} client statements during {self.work_seconds:.1f} s: {failed}; "
            f"longest {self.slowest_seconds * 1000:.0f} ms ({self.slowest_statement})"
        )


async def _client(
    dsn: str,
    statements: tuple[tuple[str, str, Callable[..., tuple[object, ...]]], ...],
    top_author: int,
    seed: int,
    traffic: Traffic,
    done: asyncio.Event,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - load generation, not security
    connection = await asyncpg.connect(dsn)
    try:
        while not done.is_set():
            name, sql, arguments = statements[rng.randrange(len(statements))]
            started = time.monotonic()
            error: BaseException | None = None
            try:
                await connection.fetch(sql, *arguments(rng, top_author))
            except (asyncpg.PostgresError, OSError) as failure:
                error = failure
            traffic.record(name, time.monotonic() - started, error)
            await asyncio.sleep(PAUSE)
    finally:
        await connection.close()


async def traffic_during(
    dsn: str,
    work: Callable[[], Awaitable[None]],
    *,
    top_author: int,
    writers: int = 2,
    readers: int = 2,
) -> Traffic:
    """Run `work` while `writers` + `readers` clients send statements; what they saw.

    `top_author` bounds the author ids the clients pick (authors 1..top_author must exist).
    """
    traffic = Traffic()
    done = asyncio.Event()
    clients = [
        asyncio.create_task(_client(dsn, WRITES, top_author, n, traffic, done))
        for n in range(writers)
    ] + [
        asyncio.create_task(_client(dsn, READS, top_author, 1000 + n, traffic, done))
        for n in range(readers)
    ]
    started = time.monotonic()
    try:
        await work()
    finally:
        traffic.work_seconds = time.monotonic() - started
        done.set()
        await asyncio.gather(*clients)
    return traffic
