"""`python -m bench.scale` (`make bench-scale`): every query shape at 10,000 and 10,000,000 books.

Loads each catalogue with SQL (bench/scale_data.py) into a database of its own, at the seed's
schema (revision 0002), then migrates it to head: the indexes are built once over the loaded
rows. A database already loaded at the right size is reused (its comment records the size).
Then the API serves it and one client sends every shape of the schema (bench/shapes.py) one
request at a time over one connection: the first requests warm it up (the first of each
document is answered by the resolvers and teaches the planner), the next ones are timed.

`--migrate-under-load` measures the migration itself: from revision 0002 to head while clients
keep inserting and reading, with the longest any of their statements waited and how many failed.

Writes bench/results/scale.json and scale.md and prints one line per shape.
"""

import argparse
import asyncio
import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from alembic import command
from api.db.migrations import alembic_config, head_revisions, upgrade_to_head
from api.db.urls import parse_database_url
from bench.scale_data import ScaleCatalogue, load
from bench.servers import HOST, BenchError, Server, start_api, wait_ready
from bench.shapes import DeepCursors, Shape, deep_cursors, shapes
from bench.under_load import Traffic, traffic_during
from tests.postgres import admin_execute, admin_url_or_embedded, drop_database, with_database

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
SEED_SCHEMA = "0002"
WARMUP_REQUESTS = 3
# A shape far slower than its target stops early: enough requests to know, not minutes more.
SHAPE_TIME_LIMIT = 20.0
PAGE_TARGET_MS = 25.0
COUNT_TARGET_MS = 50.0
BOOKS_PER_AUTHOR = 10


@dataclass(frozen=True)
class Timing:
    requests: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Prepared:
    """A catalogue ready to measure, and what it took to get there."""

    url: str
    size: ScaleCatalogue
    reused: bool
    load_seconds: float
    migrate_seconds: float
    migration: Traffic | None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--authors", type=int, default=1_000_000)
    parser.add_argument("--books", type=int, default=10_000_000)
    parser.add_argument(
        "--small-books", type=int, default=10_000, help="the small catalogue (growth table)"
    )
    parser.add_argument("--requests", type=int, default=50, help="timed requests per shape")
    parser.add_argument("--database", default="catalog_scale", help="reused between runs")
    parser.add_argument(
        "--migrate-under-load",
        action="store_true",
        help="migrate the large catalogue from 0002 to head while clients write and read",
    )
    parser.add_argument("--drop", action="store_true", help="drop the databases afterwards")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    return parser


def describe(size: ScaleCatalogue) -> str:
    return f"bench-scale: {size.authors} authors, {size.books} books"


async def _fetch_value(url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def loaded_as(admin: str, name: str) -> str | None:
    """The size comment of database `name`, or None when there is no such database."""
    return await _fetch_value(  # type: ignore[no-any-return]
        admin,
        "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
        "WHERE datname = $1",
        name,
    )


async def at_head(url: str) -> bool:
    try:
        versions = await _fetch_value(url, "SELECT array_agg(version_num) FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return False
    return frozenset(versions or ()) == head_revisions()


def _migrate(url: str, revision: str) -> None:
    target = parse_database_url(url, pooled=False)
    if revision == "head":
        upgrade_to_head(target, quiet=True)
    else:
        command.upgrade(alembic_config(target, quiet=True), revision)


async def migrate_to_head(url: str, size: ScaleCatalogue, under_load: bool) -> Traffic | None:
    async def work() -> None:
        await asyncio.to_thread(_migrate, url, "head")

    if not under_load:
        await work()
        return None
    return await traffic_during(url, work, top_author=size.authors)


async def prepare(admin: str, name: str, size: ScaleCatalogue, under_load: bool) -> Prepared:
    """The catalogue in database `name`: reused when loaded at `size`, else loaded afresh."""
    url = with_database(admin, name)
    comment = await loaded_as(admin, name)
    if comment == describe(size) and not under_load:
        started = time.monotonic()
        if not await at_head(url):  # a revision was added since: migrate the loaded rows
            await migrate_to_head(url, size, under_load=False)
        return Prepared(url, size, True, 0.0, time.monotonic() - started, None)
    if comment == describe(size):  # loaded: back to the seed's schema, to migrate again
        print(f"{name}: back to revision {SEED_SCHEMA} to migrate it under load", flush=True)
        await asyncio.to_thread(
            command.downgrade,
            alembic_config(parse_database_url(url, pooled=False), quiet=True),
            SEED_SCHEMA,
        )
        load_seconds = 0.0
    else:
        if comment is not None:
            await drop_database(admin, url)
        await admin_execute(admin, f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(_migrate, url, SEED_SCHEMA)
        print(f"{name}: loading {size.authors:,} authors and {size.books:,} books", flush=True)
        started = time.monotonic()
        connection = await asyncpg.connect(url)
        try:
            await load(connection, size)
        finally:
            await connection.close()
        load_seconds = time.monotonic() - started
        print(f"{name}: loaded in {load_seconds:.0f} s", flush=True)
    started = time.monotonic()
    traffic = await migrate_to_head(url, size, under_load)
    migrate_seconds = time.monotonic() - started
    print(f"{name}: migrated to head in {migrate_seconds:.0f} s", flush=True)
    if traffic is not None:
        print(f"{name}: during the migration, {traffic.summary()}", flush=True)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE authors")
        await connection.execute("VACUUM ANALYZE books")
        await connection.execute(f"COMMENT ON DATABASE \"{name}\" IS '{describe(size)}'")
    finally:
        await connection.close()
    return Prepared(url, size, False, load_seconds, migrate_seconds, traffic)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def answered_as_expected(shape: Shape, status: int, payload: dict[str, Any]) -> bool:
    """Data without errors; or, for a shape that must be refused, its one error code."""
    if status != 200:
        return False
    codes = [error.get("extensions", {}).get("code") for error in payload.get("errors", ())]
    return codes == ([shape.refused] if shape.refused else [])


def time_shape(server: Server, shape: Shape, cursors: DeepCursors, requests: int) -> Timing:
    """WARMUP_REQUESTS, then up to `requests` timed ones, one at a time over one connection."""
    body = json.dumps({"query": shape.query, "variables": shape.variables_for(cursors)}).encode()
    headers = {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection(HOST, server.port, timeout=60)
    durations: list[float] = []
    try:
        deadline = None
        for sent in range(WARMUP_REQUESTS + requests):
            started = time.perf_counter()
            connection.request("POST", "/graphql", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - started
            if not answered_as_expected(shape, response.status, json.loads(answer)):
                raise BenchError(f"{shape.name} answered {response.status}: {answer[:500]!r}")
            if sent < WARMUP_REQUESTS:
                continue
            durations.append(elapsed)
            deadline = deadline or time.monotonic() + SHAPE_TIME_LIMIT
            if time.monotonic() > deadline:
                break
    finally:
        connection.close()
    return Timing(
        len(durations), percentile(durations, 0.5) * 1000, percentile(durations, 0.99) * 1000
    )


def measure(prepared: Prepared, requests: int, scratch: Path) -> dict[str, Timing]:
    cursors = asyncio.run(deep_cursors(prepared.url))
    server = start_api(prepared.url, scratch)
    timings = {}
    try:
        wait_ready([server])
        for shape in shapes(prepared.size.authors):
            timing = time_shape(server, shape, cursors, requests)
            timings[shape.name] = timing
            print(
                f"{prepared.size.books:>10,} books  {shape.name:<42} p50 {timing.p50_ms:8.2f} ms"
                f"  p99 {timing.p99_ms:8.2f} ms  ({timing.requests} requests)",
                flush=True,
            )
    finally:
        server.stop()
    return timings


def target_ms(shape: Shape) -> float:
    return COUNT_TARGET_MS if shape.counts_only else PAGE_TARGET_MS


def report(
    small: tuple[Prepared, dict[str, Timing]],
    large: tuple[Prepared, dict[str, Timing]],
) -> dict[str, Any]:
    rows = []
    for shape in shapes(large[0].size.authors):
        big = large[1][shape.name]
        rows.append(
            {
                "shape": shape.name,
                "query": shape.query,
                "small": asdict(small[1][shape.name]),
                "large": asdict(big),
                "target_p50_ms": target_ms(shape),
                "passed": big.p50_ms <= target_ms(shape),
            }
        )

    def catalogue(prepared: Prepared) -> dict[str, Any]:
        return {
            "authors": prepared.size.authors,
            "books": prepared.size.books,
            "reused": prepared.reused,
            "load_seconds": round(prepared.load_seconds, 1),
            "migrate_seconds": round(prepared.migrate_seconds, 1),
        }

    traffic = large[0].migration
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "small": catalogue(small[0]),
        "large": catalogue(large[0]),
        "shapes": rows,
        "all_passed": all(row["passed"] for row in rows),
        "migration_under_load": None
        if traffic is None
        else {**asdict(traffic), "summary": traffic.summary()},
    }


def _page_of(connection: str) -> Callable[[str], bool]:
    """Shapes that page through `connection` in some ordering (no filter, no nesting)."""
    return lambda name: (
        name.startswith(f"{connection} ") and name.split()[1].endswith(("_ASC", "_DESC"))
    )


def _named(shape: str) -> Callable[[str], bool]:
    return lambda name: name == shape


def _filtered(kind: str, *, ordered: bool) -> Callable[[str], bool]:
    """Filter shapes with a `kind` value ("rare", "empty", "two letters"): the pages in each
    ordering, or the others (the page in the default order and the count)."""
    return lambda name: (
        " filter " in name and f" {kind}" in name and name.endswith(("_ASC", "_DESC")) == ordered
    )


# The table: a label, and which shapes it sums up (their worst p50 and p99).
SUMMARY: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("authors: every ordering, both ways, first / last / deep cursor", _page_of("authors")),
    ("books: every ordering, both ways, first / last / deep cursor", _page_of("books")),
    ("authors(filter: {country}), a country of 0.1%", _named("authors filter country")),
    ("authors(filter: {nameContains}), a rare name", _named("authors filter nameContains")),
    ("books(filter: {titleContains}), a rare word", _named("books filter titleContains")),
    ("books(filter: {authorId})", _named("books filter authorId")),
    ("an author's books, every ordering (nested)", lambda n: n.startswith("authors.books ")),
    ("books { totalCount }", _named("books totalCount")),
    ("authors { totalCount }", _named("authors totalCount")),
    ("authors(filter: {country}) { totalCount }", _named("authors filter country totalCount")),
    (
        "books(filter: {titleContains}) { totalCount }",
        _named("books filter titleContains totalCount"),
    ),
    ("every filter, a rare value, a page in every ordering", _filtered("rare", ordered=True)),
    (
        "every filter, a value no row holds, a page in every ordering",
        _filtered("empty", ordered=True),
    ),
    (
        "every filter, a value no row holds, with its count (page, totalCount)",
        _filtered("empty", ordered=False),
    ),
    (
        "every contains filter, two letters, every ordering: refused, no SQL",
        _filtered("two letters", ordered=True),
    ),
)


def summary(results: dict[str, Any]) -> list[str]:
    """The issue's table: each group's worst p50 at both sizes and worst p99 at the large."""
    small, large = results["small"], results["large"]
    lines = [
        f"| query shape | {small['books']:,} books p50 ms | {large['books']:,} books p50 ms "
        f"| {large['books']:,} books p99 ms | target p50 |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, matches in SUMMARY:
        rows = [row for row in results["shapes"] if matches(row["shape"])]
        if not rows:
            continue
        lines.append(
            f"| {label} ({len(rows)}) | {max(r['small']['p50_ms'] for r in rows):.1f} "
            f"| {max(r['large']['p50_ms'] for r in rows):.1f} "
            f"| {max(r['large']['p99_ms'] for r in rows):.1f} "
            f"| ≤ {rows[0]['target_p50_ms']:g} ms |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    small, large = results["small"], results["large"]
    lines = [
        *summary(results),
        "",
        "Every shape:",
        "",
        f"Single client through HTTP, one request at a time ({results['date']}, "
        f"{results['cpu_count']} CPUs); p50 / p99 in ms; target p50 ≤ {PAGE_TARGET_MS:g} ms "
        f"(≤ {COUNT_TARGET_MS:g} ms for a count alone) at {large['books']:,} books.",
        "",
        f"| query shape | {small['books']:,} books p50 | {large['books']:,} books p50 "
        f"| {large['books']:,} books p99 | target | pass/fail |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in results["shapes"]:
        lines.append(
            f"| `{row['shape']}` | {row['small']['p50_ms']:.1f} | {row['large']['p50_ms']:.1f} "
            f"| {row['large']['p99_ms']:.1f} | ≤ {row['target_p50_ms']:g} "
            f"| {'PASS' if row['passed'] else 'FAIL'} |"
        )
    loaded = "reused" if large["reused"] else f"loaded in {large['load_seconds']} s"
    lines += [
        "",
        f"Catalogues: {small['authors']:,} authors / {small['books']:,} books and "
        f"{large['authors']:,} authors / {large['books']:,} books (large: {loaded}, "
        f"migrated to head in {large['migrate_seconds']} s).",
    ]
    migration = results["migration_under_load"]
    if migration is not None:
        lines.append(
            f"Migrating the large catalogue from {SEED_SCHEMA} to head under load: "
            f"{migration['summary']}."
        )
    return "\n".join(lines) + "\n"


async def _prepare_both(args: argparse.Namespace, admin: str) -> tuple[Prepared, Prepared]:
    small_size = ScaleCatalogue(max(1, args.small_books // BOOKS_PER_AUTHOR), args.small_books)
    large_size = ScaleCatalogue(args.authors, args.books)
    small = await prepare(admin, f"{args.database}_small", small_size, under_load=False)
    large = await prepare(admin, args.database, large_size, args.migrate_under_load)
    return small, large


def run(args: argparse.Namespace) -> int:
    admin = asyncio.run(admin_url_or_embedded())
    small, large = asyncio.run(_prepare_both(args, admin))
    try:
        with tempfile.TemporaryDirectory(prefix="catalog-bench-scale-") as scratch:
            measured_small = measure(small, args.requests, Path(scratch))
            measured_large = measure(large, args.requests, Path(scratch))
        results = report((small, measured_small), (large, measured_large))
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
        table = markdown(results)
        (args.output_dir / "scale.md").write_text(table)
        print()
        print(table)
        return 0
    finally:
        if args.drop:
            for prepared in (small, large):
                asyncio.run(drop_database(admin, prepared.url))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.authors, args.books, args.small_books, args.requests) < 1:
        print("error: sizes and --requests must be at least 1", file=sys.stderr)
        return 2
    try:
        return run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
