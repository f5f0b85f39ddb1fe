"""`python -m bench`: the API against a hand-written reference, on a fresh database, under wrk.

Creates and migrates a database, loads a deterministic catalogue, starts the API
(`python -m api serve`) and the reference (`python -m bench.reference`) as subprocesses, checks
that both return the same data, drives each workload with wrk, and writes latest.json,
latest.md and latest.png. The servers are stopped and the database dropped however it ends.
"""

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import catalogue as database
from bench import wrk
from bench.attacks import TARGET as ATTACK_TARGET
from bench.attacks import run_attacks
from bench.live import run_live
from bench.measure import (
    SINGLE_REQUESTS,
    LoadSettings,
    RequestMemory,
    Round,
    RunStats,
    check_same_data,
    combine,
    fetch,
    run_round,
    warm_up,
)
from bench.measure import statement_constancy as measure_constancy
from bench.processes import WORKLOADS as PROCESSES_WORKLOADS
from bench.processes import run_processes
from bench.report import W3_RSS_RESPONSES, Results, WorkloadResult
from bench.sampling import FINE_SAMPLE_INTERVAL
from bench.seeding import CALLS_PER_ROUND, SEED_AUTHORS, SEED_BOOKS_EACH, measure_seeding
from bench.servers import (
    API_ENV,
    PROJECT_ROOT,
    BenchError,
    Server,
    start_api,
    start_reference,
    wait_ready,
)
from bench.workloads import ALL_WORKLOADS, Catalogue, Workload, workloads
from tests.postgres import admin_url_or_embedded

LIVE_WORKLOAD = "W8"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
BUSY_LOAD_PER_CPU = 0.5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--authors", type=int, default=1000, help="authors (default 1000)")
    parser.add_argument("--books", type=int, default=10, help="books per author (default 10)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs per server and workload, the servers taking turns (default 3)",
    )
    parser.add_argument(
        "--seed-calls",
        type=int,
        default=CALLS_PER_ROUND,
        help=f"W7's seedCatalog calls (and COPYs) per round (default {CALLS_PER_ROUND})",
    )
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}"
    )
    parser.add_argument(
        "--workloads",
        type=workload_names,
        default=(*ALL_WORKLOADS, LIVE_WORKLOAD),
        help="comma-separated workloads to run "
        f"(default {','.join((*ALL_WORKLOADS, LIVE_WORKLOAD))}; W8: live updates)",
    )
    parser.add_argument(
        "--live-seconds",
        type=float,
        default=20.0,
        help="W8: seconds of writes per scenario (default 20)",
    )
    parser.add_argument(
        "--live-scale",
        type=float,
        default=1.0,
        help="W8: fraction of the subscribers, filters and writes (default 1: the targets')",
    )
    parser.add_argument(
        "--attacks",
        action="store_true",
        help="then W2 quiet and beside two attackers (anonymous 0.91 MB seedCatalog writes, "
        "a new 30-60 KB document every request) on an API that needs a token to write; "
        f"target: W2 under attack ≥ {ATTACK_TARGET:g} x quiet",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="with 2 or more: then W1, W2 and W6 on that many API processes sharing the "
        "database, next to one process (default 1: not run)",
    )
    return parser


def workload_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().upper() for name in text.split(",") if name.strip())
    known = (*ALL_WORKLOADS, LIVE_WORKLOAD)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(unknown) or '(none)'}: choose from " + ", ".join(known)
        )
    return tuple(name for name in known if name in names)


def _terminate(signum: int, _: FrameType | None) -> None:
    """SIGTERM ends the run like Ctrl-C does: through the finally that cleans up."""
    raise KeyboardInterrupt(f"signal {signum}")


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        completed = subprocess.run(  # noqa: S603 - git by its full path, fixed arguments
            [git, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip() if completed.returncode == 0 else ""


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def busy_note(before: list[float], after: list[float]) -> str | None:
    """A warning when other work shared the CPUs: the numbers are then lower and noisier."""
    cpus = os.cpu_count() or 1
    if max(before[0], after[0]) <= BUSY_LOAD_PER_CPU * cpus:
        return None
    return (
        f"The machine was busy: 1-minute load average {before[0]:g} before and {after[0]:g} "
        f"after the run on {cpus} CPUs; other processes competed for the CPUs, so absolute "
        f"numbers are low and noisy (API and reference ran under the same conditions)."
    )


def machine_info(postgres: str, wrk_path: str) -> dict[str, Any]:
    version = subprocess.run(  # noqa: S603 - wrk by its full path
        [wrk_path, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": postgres,
        "platform": platform.platform(),
        "wrk": (version.stdout or version.stderr).split(" Copyright")[0].strip(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        # The API is measured as it is on disk, committed or not.
        "api_uncommitted_changes": bool(_git("status", "--porcelain", "--", "api")),
    }


def sanity_check(api: Server, workload: Workload) -> None:
    """The API answers the workloads the reference cannot check: W5 must really write."""
    _, payload = fetch(api, workload)
    created = payload["data"].get("createBook")
    if isinstance(created, dict) and (created.get("userErrors") or not created.get("book")):
        raise BenchError(f"{workload.name} did not create a book: {created}")


def benchmark(
    api: Server,
    reference: Server,
    chosen: list[Workload],
    w1: Workload,
    load: LoadSettings,
    url: str,
    seed_calls: int = CALLS_PER_ROUND,
) -> tuple[list[str], Any, list[WorkloadResult]]:
    print("checking that the API and the reference return the same data ...", flush=True)
    compared = check_same_data(api, reference, chosen)
    for workload in chosen:
        if not workload.reference_runs_it and not workload.seeding:
            sanity_check(api, workload)
    constancy = measure_constancy(api, w1)
    print(
        f"SQL statements per request: W1 at first: 1 -> {constancy.first_1}, at first: 100 -> "
        f"{constancy.first_100} (first requests of each shape: {constancy.first_1_cold}, "
        f"{constancy.first_100_cold})",
        flush=True,
    )
    reference_runs: dict[str, RunStats] = {}
    results = []
    for workload in chosen:
        print(f"{workload.name}: {workload.description}", flush=True)
        if workload.seeding:
            seeded, copied = measure_seeding(api, url, workload, load.rounds, seed_calls)
            for label, run in (("api", seeded), ("COPY", copied)):
                print(f"  {label:<10} {_seed_line(run)}", flush=True)
            results.append(WorkloadResult(workload, seeded, copied))
            continue
        servers = [(api, True), *([(reference, False)] if workload.reference_runs_it else [])]
        stats = interleaved(servers, workload, load)
        ours = stats[0]
        for (server, _), run in zip(servers, stats, strict=True):
            label = "api" if server is api else "reference"
            print(f"  {label:<10} {_line(run)}", flush=True)
            if run.single_request is not None:
                print(f"  {label:<10} {_memory_line(run.single_request)}", flush=True)
        if workload.reference_runs_it:
            reference_runs[workload.name] = stats[1]
        compared_with = reference_runs.get(workload.reference) if workload.reference else None
        results.append(WorkloadResult(workload, ours, compared_with))
    return compared, constancy, results


def interleaved(
    servers: list[tuple[Server, bool]], workload: Workload, load: LoadSettings
) -> list[RunStats]:
    """Each server warmed up, then `rounds` runs each, taking turns, and who goes first
    alternating (A B, B A, A B, ...).

    On a shared machine the CPU time left to us drifts from minute to minute; runs that take
    turns see the same drift, so the ratio between the servers is not a matter of which ran
    in the quieter minute.
    """
    warmed = [warm_up(server, workload, load) for server, _ in servers]
    rounds: list[list[Round]] = [[] for _ in servers]
    for number in range(load.rounds):
        order = list(range(len(servers)))
        if number % 2:
            order.reverse()
        for index in order:
            server, api = servers[index]
            rounds[index].append(run_round(server, workload, load, api=api))
    return [
        combine(server, workload, runs, response=response, idle_rss=idle_rss, api=api)
        for (server, api), runs, (response, idle_rss) in zip(servers, rounds, warmed, strict=True)
    ]


def _line(stats: RunStats) -> str:
    return (
        f"{stats.requests_per_second:9,.0f} req/s  p50 {stats.p50_ms:7.2f} ms  "
        f"p99 {stats.p99_ms:7.2f} ms  {stats.cpu_ms_per_request:6.2f} CPU ms/req  "
        f"peak under load {stats.peak_rss_mb:6.1f} MB"
    )


def _seed_line(stats: RunStats) -> str:
    return (
        f"{stats.requests_per_second:9,.0f} rows/s  p50 {stats.p50_ms:7.2f} ms per call  "
        f"{stats.sql_per_request:4.1f} SQL/call  {stats.cpu_ms_per_request:6.2f} CPU ms/call"
    )


def _memory_line(memory: RequestMemory) -> str:
    return (
        f"{memory.requests} single requests: idle {memory.idle_rss_mb:.1f} MB, peak "
        f"{memory.peak_rss_mb:.1f} MB, largest growth {memory.max_growth_mb:.2f} MB = "
        f"{memory.max_growth_responses:.2f} x the {memory.response_bytes:,}-byte response"
    )


def run(args: argparse.Namespace) -> int:
    wrk_path = wrk.find_wrk()
    catalogue = Catalogue(args.authors, args.books)
    admin = asyncio.run(admin_url_or_embedded())
    url: str | None = None
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as scratch:
        try:
            url = asyncio.run(database.create(admin))
            print(f"database {url}", flush=True)
            database.migrate(url)
            postgres = asyncio.run(database.load(url, catalogue))
            print(
                f"loaded {catalogue.authors} authors x {catalogue.books_per_author} books",
                flush=True,
            )
            load_before = load_average()
            if busy_note(load_before, load_before):
                print(f"warning: load average {load_before} before starting", flush=True)
            servers = [start_api(url, Path(scratch)), start_reference(url, Path(scratch))]
            wait_ready(servers)
            api, reference = servers
            load = LoadSettings(
                duration=args.duration,
                rounds=max(1, args.rounds),
                warmup=args.warmup,
                connections=args.connections,
                threads=args.threads,
                wrk=wrk_path,
                scratch=Path(scratch),
            )
            every = workloads(catalogue)
            chosen = [w for w in every if w.name in args.workloads]
            w1 = next(w for w in every if w.name == "W1")
            compared, constancy, results = benchmark(
                api, reference, chosen, w1, load, url, args.seed_calls
            )
            attacks = None
            if args.attacks:
                print(
                    "W2 quiet and under attack, on an API that needs a token to write", flush=True
                )
                attacks = run_attacks(url, next(w for w in every if w.name == "W2"), load)
            processes = None
            if args.processes > 1:
                names = ", ".join(w.name for w in chosen if w.name in PROCESSES_WORKLOADS)
                print(f"{names} on {args.processes} API processes", flush=True)
                processes = run_processes(api, url, chosen, args.processes, load)
            live = None
            if LIVE_WORKLOAD in args.workloads:
                live = run_live(api, url, args.live_seconds, args.live_scale, catalogue.authors)
            load_after = load_average()
            machine = machine_info(postgres, wrk_path)
            machine["load_average_before"] = load_before
            machine["load_average_after"] = load_after
            busy = busy_note(load_before, load_after)
            report = Results(
                machine=machine,
                config={
                    "duration": args.duration,
                    "rounds": max(1, args.rounds),
                    "warmup": args.warmup,
                    "connections": args.connections,
                    "threads": max(1, min(args.threads, args.connections)),
                    "api_env": dict(API_ENV),
                    "uvicorn_workers": 1,
                    "workloads": list(args.workloads),
                    "attacks": args.attacks,
                    "processes": args.processes,
                },
                catalogue={
                    "authors": catalogue.authors,
                    "books_per_author": catalogue.books_per_author,
                    "w2_author_id": catalogue.fixed_author,
                    "w5_author_id": catalogue.writing_author,
                },
                compared=compared,
                constancy=constancy,
                workloads=results,
                notes=[
                    "The reference has no W4: W4's ratio is against the reference's W1 run.",
                    "W5 is a mutation: judged on mutations/s, with no reference and no ratio.",
                    f"Each workload ran in {max(1, args.rounds)} rounds of {args.duration} s per "
                    "server, the API and the reference taking turns and alternating which goes "
                    "first: req/s is all requests over all seconds, p50 the median of the "
                    "rounds' p50, p99 the largest of their p99. Each round is listed below.",
                    "Peak RSS under load is sampled every ~5 ms over the measured runs with "
                    f"{args.connections} connections, so up to {args.connections} responses "
                    "are in memory at once: information, not the memory target. Idle RSS: just "
                    "before the workload's warm-up.",
                    f"W3's memory target is judged on single requests: after W3's wrk runs, "
                    f"{SINGLE_REQUESTS} requests one after another over one connection to the "
                    f"otherwise idle server, its RSS read just before each and sampled every "
                    f"~{FINE_SAMPLE_INTERVAL * 1000:g} ms while each is in flight; it passes "
                    f"when every request's peak RSS < the RSS just before it + "
                    f"{W3_RSS_RESPONSES} x the response size. The reference is measured the "
                    f"same way, for comparison.",
                    "CPU ms/request: server process user+system CPU over the measured runs "
                    "divided by wrk's completed requests.",
                    f"W7 is not run under wrk: per round, {args.seed_calls} seedCatalog calls "
                    f"of {SEED_AUTHORS} authors x {SEED_BOOKS_EACH} books, one at a time over "
                    "one connection, against the same rows written with asyncpg's "
                    "copy_records_to_table (the authors' ids reserved first, one transaction "
                    "per call), fresh names every call, the two sides taking turns call by "
                    "call. Its 'req/s' are rows/s, its ratio API rows/s over COPY rows/s, p50 "
                    "and p99 per call, SQL and CPU per call.",
                    *([busy] if busy else []),
                ],
                attacks=attacks,
                processes=processes,
                live=live,
            )
            paths = report.write(args.output_dir)
            print()
            print(report.markdown())
            print("wrote " + ", ".join(str(path) for path in paths.values()))
            return 0
        finally:
            for server in servers:
                server.stop()
            if url is not None:
                asyncio.run(database.drop(admin, url))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("authors", "books", "duration", "connections", "threads", "seed_calls"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if not 0 < args.live_scale <= 1 or args.live_seconds <= 0:
        print("error: --live-scale must be in (0, 1] and --live-seconds above 0", file=sys.stderr)
        return 2
    if args.processes < 1:
        print("error: --processes must be at least 1", file=sys.stderr)
        return 2
    if args.processes > 1 and not set(args.workloads) & set(PROCESSES_WORKLOADS):
        print(
            f"error: --processes compares {', '.join(PROCESSES_WORKLOADS)}: choose one of them "
            "in --workloads",
            file=sys.stderr,
        )
        return 2
    if args.warmup < 0:
        print("error: --warmup must be 0 or more", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped, database dropped", file=sys.stderr)
        return 130
