"""Measure the servers: same data first, then each workload under wrk, with CPU, memory and SQL.

For the memory target (W3), also the memory of one request at a time on an otherwise idle
server: N sequential requests over one connection, the server's RSS sampled while each is in
flight.
"""

import http.client
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import sampling, wrk
from bench.servers import HOST, BenchError, MetricsSnapshot, Server, request, scrape
from bench.servers import statements_of_one_request as one_request_statements
from bench.workloads import W1_FIRST_1, Workload

# After wrk stops, let the requests still in flight finish before reading counters.
SETTLE_SECONDS = 0.5
MB = 1024 * 1024
# The single-request memory measurement: this many requests, one after another, one connection.
SINGLE_REQUESTS = 10
# Before each of them, so the server has finished with the previous one (and has accepted the
# connection before the first): its RSS "just before" is that of an idle process.
SINGLE_REQUEST_PAUSE = 0.05
SINGLE_REQUEST_TIMEOUT = 60.0
# Of a workload whose variables vary, how many variable sets both servers must answer alike.
COMPARED_VARIABLE_SETS = 25


@dataclass(frozen=True)
class RequestMemory:
    """The server's RSS around N sequential requests over one connection, otherwise idle.

    Per request: the RSS just before it is sent, and the peak sampled while it is in flight
    (from just before sending until its response is read whole). Its growth is the difference.
    """

    requests: int
    sample_interval_ms: float
    samples: int
    response_bytes: int
    # RSS just before the first request (after the wrk run and its settling).
    idle_rss_mb: float
    # The largest RSS sampled during any of the requests.
    peak_rss_mb: float
    # The largest (peak during a request - RSS just before it), in MB and in response sizes.
    max_growth_mb: float
    max_growth_responses: float
    # The request with that largest growth (0-based): its RSS just before, and its peak.
    worst_request: int
    worst_rss_before_mb: float
    worst_peak_rss_mb: float
    # Each request in order.
    rss_before_mb: list[float]
    request_peak_rss_mb: list[float]
    growth_mb: list[float]
    durations_ms: list[float]

    @classmethod
    def of(
        cls,
        before: list[int],
        peaks: list[int],
        durations: list[float],
        samples: int,
        response_bytes: int,
        interval: float,
    ) -> "RequestMemory":
        growth = [peak - start for start, peak in zip(before, peaks, strict=True)]
        worst = max(range(len(growth)), key=growth.__getitem__)
        return cls(
            requests=len(growth),
            sample_interval_ms=interval * 1000,
            samples=samples,
            response_bytes=response_bytes,
            idle_rss_mb=before[0] / MB,
            peak_rss_mb=max(peaks) / MB,
            max_growth_mb=growth[worst] / MB,
            max_growth_responses=growth[worst] / response_bytes if response_bytes else 0.0,
            worst_request=worst,
            worst_rss_before_mb=before[worst] / MB,
            worst_peak_rss_mb=peaks[worst] / MB,
            rss_before_mb=[value / MB for value in before],
            request_peak_rss_mb=[value / MB for value in peaks],
            growth_mb=[value / MB for value in growth],
            durations_ms=[seconds * 1000 for seconds in durations],
        )

    def limit_mb(self, responses: float) -> float:
        """The RSS the worst request had to stay under: its RSS before + `responses` bodies."""
        return self.worst_rss_before_mb + responses * self.response_bytes / MB

    def within(self, responses: float) -> bool:
        """Every request's peak < its RSS just before + `responses` x the response size."""
        return self.max_growth_mb * MB < responses * self.response_bytes


@dataclass(frozen=True)
class LoadSettings:
    duration: int
    rounds: int
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
    # The peak over warm-up and run, under load: up to `connections` requests in flight at once.
    peak_rss_mb: float
    rss_samples: int
    response_bytes: int
    sql_per_request: float
    non_2xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    graphql_errors: int = 0
    # One request at a time after the run (the workloads with a memory target only).
    single_request: RequestMemory | None = None
    # Each round's requests/s, in the order they ran.
    rounds_requests_per_second: list[float] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors.get("timeout", 0) + self.graphql_errors


def fetch(
    server: Server, workload: Workload, body: bytes | None = None
) -> tuple[bytes, dict[str, Any]]:
    """One request (the workload's first body unless given): the raw answer and its parsed
    JSON, which must hold data and no errors."""
    status, answer = request(server.port, "POST", "/graphql", body or workload.body())
    return answer, checked_answer(server, workload, status, answer)


def checked_answer(server: Server, workload: Workload, status: int, body: bytes) -> dict[str, Any]:
    """The parsed JSON of an answer, which must be a 200 with data and no errors."""
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
    return payload


def single_request_memory(
    server: Server,
    workload: Workload,
    count: int = SINGLE_REQUESTS,
    interval: float = sampling.FINE_SAMPLE_INTERVAL,
) -> RequestMemory:
    """`count` requests one after another over one keep-alive connection, nothing else running.

    The server's RSS is read just before each request is sent, then sampled every `interval`
    until its response has been read whole.
    """
    body = workload.body()
    headers = {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection(HOST, server.port, timeout=SINGLE_REQUEST_TIMEOUT)
    before: list[int] = []
    peaks: list[int] = []
    durations: list[float] = []
    samples = 0
    response_bytes = 0
    try:
        connection.connect()
        for _ in range(count):
            time.sleep(SINGLE_REQUEST_PAUSE)
            before.append(sampling.rss_bytes(server.pid))
            started = time.perf_counter()
            with sampling.PeakRss(server.pid, interval) as peak:
                connection.request("POST", "/graphql", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            durations.append(time.perf_counter() - started)
            peaks.append(peak.peak)
            samples += peak.samples
            checked_answer(server, workload, response.status, answer)
            if response.will_close:
                raise BenchError(
                    f"the {server.name} server closed the connection after a {workload.name} "
                    "request: the single-request memory needs one keep-alive connection"
                )
            response_bytes = len(answer)
    finally:
        connection.close()
    server.check_alive()
    return RequestMemory.of(before, peaks, durations, samples, response_bytes, interval)


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
        for body in workload.bodies()[:COMPARED_VARIABLE_SETS]:
            _, theirs = fetch(reference, workload, body)
            for attempt in ("first", "second"):
                _, ours = fetch(api, workload, body)
                difference = first_difference(ours["data"], theirs["data"])
                if difference is not None:
                    raise BenchError(
                        f"the API and the reference return different data for {workload.name} "
                        f"(the API's {attempt} answer to {body[:300]!r}), so their speeds "
                        f"cannot be compared. First difference (API vs reference): {difference}"
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
        workload.bodies(),
        seconds=seconds,
        connections=load.connections,
        threads=load.threads,
        script_dir=load.scratch,
    )


@dataclass(frozen=True)
class Round:
    """One wrk run of `duration` seconds against one server, and what the server spent on it."""

    requests: int
    seconds: float
    latency_ms: dict[str, float]
    cpu_seconds: float
    peak_rss: int
    rss_samples: int
    non_2xx: int
    socket_errors: dict[str, int]
    # The API only: GraphQL requests and SQL statements it counted, and failed operations.
    counted: float = 0.0
    statements: float = 0.0
    graphql_errors: int = 0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def warm_up(server: Server, workload: Workload, load: LoadSettings) -> tuple[bytes, int]:
    """One checked request, then `warmup` seconds of wrk; the answer and the idle RSS before."""
    body, _ = fetch(server, workload)
    idle_rss = sampling.rss_bytes(server.pid)
    if load.warmup > 0:
        _run_wrk(server, workload, load.warmup, load)
        time.sleep(SETTLE_SECONDS)
    server.check_alive()
    return body, idle_rss


def run_round(server: Server, workload: Workload, load: LoadSettings, *, api: bool) -> Round:
    """`duration` seconds of wrk; CPU and RSS over the run, and for the API its SQL."""
    before: MetricsSnapshot | None = scrape(server) if api else None
    with sampling.PeakRss(server.pid) as peak:
        cpu_before = sampling.cpu_seconds(server.pid)
        result = _run_wrk(server, workload, load.duration, load)
        cpu_after = sampling.cpu_seconds(server.pid)
        time.sleep(SETTLE_SECONDS)
    server.check_alive()
    counted = statements = 0.0
    graphql_errors = 0
    if before is not None:
        after = scrape(server)
        counted = after.total_requests - before.total_requests
        if counted <= 0:
            raise BenchError(f"the API counted no GraphQL requests during {workload.name}")
        statements = after.statements - before.statements
        graphql_errors = round(after.failed_requests() - before.failed_requests())
    return Round(
        requests=result.requests,
        seconds=result.seconds,
        latency_ms=result.latency_ms,
        cpu_seconds=cpu_after - cpu_before,
        peak_rss=peak.peak,
        rss_samples=peak.samples,
        non_2xx=result.non_2xx,
        socket_errors=result.socket_errors,
        counted=counted,
        statements=statements,
        graphql_errors=graphql_errors,
    )


def combine(
    server: Server,
    workload: Workload,
    rounds: list[Round],
    *,
    response: bytes,
    idle_rss: int,
    api: bool,
) -> RunStats:
    """The rounds of one server as one run: requests and CPU summed over them, latency
    percentiles their median (p99 their largest), SQL per request over all of them.

    For a workload with a memory target, then the memory of single requests on the idle server.
    """
    requests = sum(r.requests for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    socket_errors: dict[str, int] = {}
    for r in rounds:
        for kind, count in r.socket_errors.items():
            socket_errors[kind] = socket_errors.get(kind, 0) + count
    # The reference sends one statement per request by construction.
    counted = sum(r.counted for r in rounds)
    sql_per_request = sum(r.statements for r in rounds) / counted if api else 1.0
    single = single_request_memory(server, workload) if workload.single_request_memory else None

    def percentile(name: str) -> float:
        return statistics.median(r.latency_ms[name] for r in rounds)

    return RunStats(
        server=server.name,
        workload=workload.name,
        requests=requests,
        seconds=seconds,
        requests_per_second=requests / seconds if seconds > 0 else 0.0,
        p50_ms=percentile("50"),
        p75_ms=percentile("75"),
        p90_ms=percentile("90"),
        p99_ms=max(r.latency_ms["99"] for r in rounds),
        cpu_ms_per_request=sum(r.cpu_seconds for r in rounds) * 1000 / max(requests, 1),
        idle_rss_mb=idle_rss / MB,
        peak_rss_mb=max(r.peak_rss for r in rounds) / MB,
        rss_samples=sum(r.rss_samples for r in rounds),
        response_bytes=len(response),
        sql_per_request=sql_per_request,
        non_2xx=sum(r.non_2xx for r in rounds),
        socket_errors=socket_errors,
        graphql_errors=sum(r.graphql_errors for r in rounds),
        single_request=single,
        rounds_requests_per_second=[r.requests_per_second for r in rounds],
    )
