"""`--processes N`: W1, W2 and W6 served by N API processes on one database, next to one.

Issue 20's horizontal scale, measured: more API replicas behind a load balancer. Here the
balancer is the simplest there is: wrk takes one URL, so each process gets a wrk of its own,
all running at once with the connections split evenly between them, and their requests are
summed. One process gets the same connections from one wrk. The two layouts take turns in
rounds (which goes first alternating), as the main benchmark's servers do. On 2 shared cores
little gain is expected; what must hold is that nothing breaks: no request fails.
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import sampling, wrk
from bench.measure import SETTLE_SECONDS, LoadSettings, warm_up
from bench.servers import Server, scrape, start_api, wait_ready
from bench.workloads import Workload

WORKLOADS = ("W1", "W2", "W6")


@dataclass(frozen=True)
class Layout:
    """One layout's run of one workload: every process's wrk together.

    Requests/s is the sum of the wrks' rates (they ran at once); p50 their mean, p99 the
    largest."""

    processes: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float
    non_2xx: int
    socket_errors: int
    failed: int  # requests the API processes counted as failed (their metrics)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.failed


@dataclass(frozen=True)
class LayoutSummary:
    processes: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    errors: int
    rounds_requests_per_second: list[float]

    @classmethod
    def of(cls, runs: list[Layout]) -> "LayoutSummary":
        """The rounds of one layout: req/s their mean, p50 their median, p99 the largest."""
        requests = sum(r.requests for r in runs)
        return cls(
            processes=runs[0].processes,
            requests=requests,
            requests_per_second=statistics.fmean(r.requests_per_second for r in runs),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p99_ms=max(r.p99_ms for r in runs),
            cpu_ms_per_request=sum(r.cpu_seconds for r in runs) * 1000 / max(requests, 1),
            errors=sum(r.errors for r in runs),
            rounds_requests_per_second=[r.requests_per_second for r in runs],
        )


@dataclass
class ProcessesResults:
    processes: int
    # Per workload: one process, then `processes` processes.
    workloads: dict[str, tuple[LayoutSummary, LayoutSummary]]
    rounds: int
    duration: int
    connections: int
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(one.errors + many.errors for one, many in self.workloads.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "rounds": self.rounds,
            "duration": self.duration,
            "connections": self.connections,
            "workloads": {
                name: {
                    "one_process": asdict(one),
                    "processes": asdict(many),
                    "gain": _gain(one, many),
                }
                for name, (one, many) in self.workloads.items()
            },
            "errors": self.errors,
            "passed": self.errors == 0,
            "notes": self.notes,
        }

    def markdown(self) -> list[str]:
        n = self.processes
        lines = [
            "",
            f"Processes (`--processes {n}`): {n} API processes on the same database, each "
            f"driven by its own wrk at once ({self.connections} connections split between "
            f"them) and their requests summed, against one process with all {self.connections} "
            f"connections; {self.rounds} rounds of {self.duration} s each, taking turns.",
            "",
            f"| workload | 1 process req/s | {n} processes req/s | gain | p50 ms 1 / {n} "
            f"| p99 ms 1 / {n} | CPU ms/request 1 / {n} | errors 1 / {n} |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, (one, many) in self.workloads.items():
            lines.append(
                f"| {name} | {one.requests_per_second:,.0f} | {many.requests_per_second:,.0f} "
                f"| {_gain(one, many):.2f}x | {one.p50_ms:.2f} / {many.p50_ms:.2f} "
                f"| {one.p99_ms:.2f} / {many.p99_ms:.2f} "
                f"| {one.cpu_ms_per_request:.2f} / {many.cpu_ms_per_request:.2f} "
                f"| {one.errors} / {many.errors} |"
            )
        return lines


def _gain(one: LayoutSummary, many: LayoutSummary) -> float:
    return many.requests_per_second / one.requests_per_second if one.requests_per_second else 0.0


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares, none below 1."""
    return [max(1, total // parts + (1 if index < total % parts else 0)) for index in range(parts)]


def layout_run(servers: list[Server], workload: Workload, load: LoadSettings) -> Layout:
    """One wrk per server, all at once, the connections split between them."""
    connections = split(load.connections, len(servers))
    threads = max(1, load.threads // len(servers))
    before = [scrape(server) for server in servers]
    cpu_before = [sampling.cpu_seconds(server.pid) for server in servers]

    def drive(index: int) -> wrk.WrkResult:
        scripts = load.scratch / f"process-{index}"
        scripts.mkdir(exist_ok=True)
        return wrk.run(
            load.wrk,
            servers[index].graphql_url,
            workload.bodies(),
            seconds=load.duration,
            connections=connections[index],
            threads=threads,
            script_dir=scripts,
        )

    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        results = list(pool.map(drive, range(len(servers))))
    cpu = sum(sampling.cpu_seconds(s.pid) - c for s, c in zip(servers, cpu_before, strict=True))
    time.sleep(SETTLE_SECONDS)
    failed = 0
    for server, earlier in zip(servers, before, strict=True):
        server.check_alive()
        failed += round(scrape(server).failed_requests() - earlier.failed_requests())
    total = sum(r.requests for r in results)
    return Layout(
        processes=len(servers),
        requests=total,
        requests_per_second=sum(r.requests / r.seconds for r in results if r.seconds > 0),
        p50_ms=statistics.fmean(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        cpu_seconds=cpu,
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(sum(r.socket_errors.values()) for r in results),
        failed=failed,
    )


def compare(
    servers: list[Server], workload: Workload, load: LoadSettings
) -> tuple[LayoutSummary, LayoutSummary]:
    """One process (the first) against all of them, in rounds taking turns."""
    for server in servers:
        warm_up(server, workload, load)
    layouts = ([servers[0]], servers)
    runs: list[list[Layout]] = [[], []]
    for number in range(load.rounds):
        order = (0, 1) if number % 2 == 0 else (1, 0)
        for index in order:
            runs[index].append(layout_run(layouts[index], workload, load))
    return LayoutSummary.of(runs[0]), LayoutSummary.of(runs[1])


def run_processes(
    api: Server, database_url: str, chosen: list[Workload], count: int, load: LoadSettings
) -> ProcessesResults:
    """Start `count - 1` more API processes beside `api`, and compare W1, W2 and W6."""
    log_dir = load.scratch / "processes"
    log_dir.mkdir(exist_ok=True)
    extra = [start_api(database_url, log_dir, name=f"api-{n + 2}") for n in range(count - 1)]
    try:
        wait_ready(extra)
        servers = [api, *extra]
        compared = {}
        for workload in (w for w in chosen if w.name in WORKLOADS):
            print(f"  {workload.name}: 1 process against {count} ...", flush=True)
            compared[workload.name] = compare(servers, workload, load)
    finally:
        for server in extra:
            server.stop()
    return ProcessesResults(
        processes=count,
        workloads=compared,
        rounds=load.rounds,
        duration=load.duration,
        connections=load.connections,
        notes=[
            "Each process is one uvicorn worker with its own pools, on the same Postgres; "
            "wrk, Postgres and the API processes share the machine's CPUs.",
            "Errors: non-2xx answers, wrk socket errors (connect, read, write, timeout) and "
            "requests the API processes counted as failed.",
        ],
    )
