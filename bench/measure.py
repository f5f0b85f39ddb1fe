"""Measure the servers: same data first, then each workload under wrk, with CPU, memory and SQL."""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import sampling, wrk
from bench.servers import BenchError, MetricsSnapshot, Server, request, scrape
from bench.servers import statements_of_one_request as one_request_statements
from bench.workloads import W1_FIRST_1, Workload

# After wrk stops, let the requests still in flight finish before reading counters.
SETTLE_SECONDS = 0.5
MB = 1024 * 1024


@dataclass(frozen=True)
class LoadSettings:
    duration: int
    warmup: int
    connections: int
    threads: int
    wrk: str
    scratch: Path


@dataclass
class RunStats:
    """One server under one workload."""

    server: str
    workload: str
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    idle_rss_mb: float
    peak_rss_mb: float
    rss_samples: int
    response_bytes: int
    sql_per_request: float
    non_2xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    graphql_errors: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors.get("timeout", 0) + self.graphql_errors


def fetch(server: Server, workload: Workload) -> tuple[bytes, dict[str, Any]]:
    """One request: the raw body and its parsed JSON, which must hold data and no errors."""
    status, body = request(server.port, "POST", "/graphql", workload.body())
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if status != 200 or not isinstance(payload, dict) or payload.get("errors"):
        raise BenchError(
            f"{workload.name} on the {server.name} server answered {status}: "
            f"{body[:1000].decode(errors='replace')}"
        )
    if payload.get("data") is None:
        raise BenchError(f"{workload.name} on the {server.name} server returned no data")
    return body, payload


def first_difference(left: object, right: object, path: str = "data") -> str | None:
    """Where two JSON values first differ, in words; None when they are equal."""
    if type(left) is not type(right):
        return f"{path}: {left!r:.200} vs {right!r:.200}"
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return f"{path}: keys {sorted(left)} vs {sorted(right)}"
        for key in left:
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return f"{path}: {len(left)} items vs {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if left == right else f"{path}: {left!r:.200} vs {right!r:.200}"


def check_same_data(api: Server, reference: Server, workloads: list[Workload]) -> list[str]:
    """Both servers return the same data for the reference's workloads, or BenchError.

    The API is asked twice: a first request of a query shape may take another path than the
    ones after it (caches, compiled plans), and both must agree with the reference.
    """
    compared = []
    for workload in workloads:
        if not workload.reference_runs_it:
            continue
        _, theirs = fetch(reference, workload)
        for attempt in ("first", "second"):
            _, ours = fetch(api, workload)
            difference = first_difference(ours["data"], theirs["data"])
            if difference is not None:
                raise BenchError(
                    f"the API and the reference return different data for {workload.name} "
                    f"(the API's {attempt} answer), so their speeds cannot be compared. "
                    f"First difference (API vs reference): {difference}"
                )
        compared.append(workload.name)
    return compared


@dataclass(frozen=True)
class Constancy:
    """W1's SQL statements per request at first: 1 and first: 100, judged on warm shapes."""

    first_1: int
    first_100: int
    # The same pair sent first: a shape's first request may cost more (caches warming).
    first_1_cold: int
    first_100_cold: int

    @property
    def passed(self) -> bool:
        return self.first_1 == self.first_100


def statement_constancy(api: Server, w1: Workload) -> Constancy:
    """One request each of W1 at first: 1 and first: 100 on a quiet server, twice over."""
    cold = [one_request_statements(api, body)[0] for body in (W1_FIRST_1.body(), w1.body())]
    warm = [one_request_statements(api, body)[0] for body in (W1_FIRST_1.body(), w1.body())]
    return Constancy(warm[0], warm[1], cold[0], cold[1])


def _run_wrk(server: Server, workload: Workload, seconds: int, load: LoadSettings) -> wrk.WrkResult:
    return wrk.run(
        load.wrk,
        server.graphql_url,
        workload.body(),
        seconds=seconds,
        connections=load.connections,
        threads=load.threads,
        script_dir=load.scratch,
    )


def measure(server: Server, workload: Workload, load: LoadSettings, *, api: bool) -> RunStats:
    """Warm up, then `duration` seconds of wrk; CPU, RSS and (for the API) SQL over the run."""
    body, _ = fetch(server, workload)
    idle_rss = sampling.rss_bytes(server.pid)
    before: MetricsSnapshot | None = None
    after: MetricsSnapshot | None = None
    with sampling.PeakRss(server.pid) as peak:
        if load.warmup > 0:
            _run_wrk(server, workload, load.warmup, load)
            time.sleep(SETTLE_SECONDS)
        server.check_alive()
        if api:
            before = scrape(server)
        cpu_before = sampling.cpu_seconds(server.pid)
        result = _run_wrk(server, workload, load.duration, load)
        cpu_after = sampling.cpu_seconds(server.pid)
        time.sleep(SETTLE_SECONDS)
    server.check_alive()
    sql_per_request = 1.0  # the reference sends one statement per request by construction
    graphql_errors = 0
    if api:
        after = scrape(server)
        assert before is not None
        counted = after.total_requests - before.total_requests
        if counted <= 0:
            raise BenchError(f"the API counted no GraphQL requests during {workload.name}")
        sql_per_request = (after.statements - before.statements) / counted
        graphql_errors = round(after.failed_requests() - before.failed_requests())
    requests = max(result.requests, 1)
    return RunStats(
        server=server.name,
        workload=workload.name,
        requests=result.requests,
        seconds=result.seconds,
        requests_per_second=result.requests_per_second,
        p50_ms=result.latency_ms["50"],
        p75_ms=result.latency_ms["75"],
        p90_ms=result.latency_ms["90"],
        p99_ms=result.latency_ms["99"],
        cpu_ms_per_request=(cpu_after - cpu_before) * 1000 / requests,
        idle_rss_mb=idle_rss / MB,
        peak_rss_mb=peak.peak / MB,
        rss_samples=peak.samples,
        response_bytes=len(body),
        sql_per_request=sql_per_request,
        non_2xx=result.non_2xx,
        socket_errors=result.socket_errors,
        graphql_errors=graphql_errors,
    )
