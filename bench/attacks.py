"""`--attacks`: W2's throughput quiet and while two attackers hit the same API process.

Issue 15's two cheapest denials of service, each from its own process (bench.attackers):
anonymous 0.91 MB `seedCatalog` writes, and a new 30-60 KB document every request. The API
is a process of its own, started with an API_TOKEN so writes need one, on the benchmark's
database. W2 runs in rounds, quiet and under attack taking turns (which goes first
alternating), as the main benchmark's servers do: on shared cores both see the same drift.
The target: W2 under attack ≥ 0.5 x W2 quiet.
"""

import os
import secrets
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import sampling, wrk
from bench.attackers import KINDS, Attackers, Tally
from bench.measure import MB, SETTLE_SECONDS, LoadSettings, warm_up
from bench.servers import MetricsSnapshot, Server, scrape, start_api, wait_ready
from bench.workloads import Workload

TARGET = 0.5
# The attackers run this long before W2's run starts, so W2 meets them at full speed.
ATTACK_LEAD_SECONDS = 1.0
ATTACKED_API = "api-attacked"
# The API's limits and budgets that decide what an attack costs: when the environment sets
# any of them (the attacked API inherits it), the report says so beside the numbers.
LIMIT_SETTINGS = (
    "MAX_BODY_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_TOKENS",
    "NEW_DOCUMENT_BYTES_PER_SECOND",
    "COMPILES_PER_SECOND",
    "DOCUMENT_CACHE_BYTES",
    "REPEATED_REQUEST_CACHE_BYTES",
    "DB_QUEUE_LIMIT",
)


@dataclass(frozen=True)
class W2Round:
    """One wrk run of W2, quiet or under attack."""

    attacked: bool
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    timeouts: int
    # W2 requests the API counted as failed (its metrics, by operation name).
    failed: int
    # The API process's CPU seconds over the run (W2's and, attacked, the attackers').
    cpu_seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.timeouts + self.failed


@dataclass(frozen=True)
class W2Summary:
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # The API's CPU seconds per second of the runs: how much of a core it had.
    api_cpu_per_second: float
    rounds_requests_per_second: list[float]

    @classmethod
    def of(cls, rounds: list[W2Round]) -> "W2Summary":
        requests = sum(r.requests for r in rounds)
        seconds = sum(r.seconds for r in rounds)
        return cls(
            requests=requests,
            seconds=seconds,
            requests_per_second=requests / seconds if seconds > 0 else 0.0,
            p50_ms=statistics.median(r.p50_ms for r in rounds),
            p99_ms=max(r.p99_ms for r in rounds),
            errors=sum(r.errors for r in rounds),
            api_cpu_per_second=sum(r.cpu_seconds for r in rounds) / seconds if seconds else 0.0,
            rounds_requests_per_second=[r.requests_per_second for r in rounds],
        )


@dataclass
class AttackResults:
    quiet: W2Summary
    attacked: W2Summary
    # Each attacker's tally over every attacked round, by kind.
    attackers: dict[str, Tally]
    rss_before_mb: float
    rss_after_mb: float
    peak_rss_mb: float
    # Each attacker alone for one run, nothing else sent: the API's CPU per attack request.
    cpu_ms_per_attack: dict[str, float]
    api_settings: dict[str, str]
    rounds: int
    duration: int
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        quiet = self.quiet.requests_per_second
        return self.attacked.requests_per_second / quiet if quiet > 0 else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": "W2",
            "quiet": asdict(self.quiet),
            "under_attack": asdict(self.attacked),
            "ratio": self.ratio,
            "target": TARGET,
            "passed": self.passed,
            "attackers": {kind: tally.to_json() for kind, tally in self.attackers.items()},
            "rss_before_mb": self.rss_before_mb,
            "rss_after_mb": self.rss_after_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "api_cpu_ms_per_attack_request_alone": self.cpu_ms_per_attack,
            "api_settings": self.api_settings,
            "rounds": self.rounds,
            "duration": self.duration,
            "notes": self.notes,
        }

    def markdown(self) -> list[str]:
        quiet, attacked = self.quiet, self.attacked
        lines = [
            "",
            f"Under attack (`--attacks`): W2 on its own API process (API_TOKEN set), "
            f"{self.rounds} rounds of {self.duration} s quiet and {self.rounds} under attack, "
            "taking turns; two attackers, each its own process and connection, looping as fast "
            "as the server answers: anonymous 0.91 MB `seedCatalog` writes, and a new "
            "30-60 KB document every request.",
            "",
            "| W2 | req/s | p50 ms | p99 ms | errors | API CPU s/s | rounds req/s |",
            "|---|--:|--:|--:|--:|--:|---|",
        ]
        for name, run in (("quiet", quiet), ("under attack", attacked)):
            rounds = ", ".join(f"{value:,.0f}" for value in run.rounds_requests_per_second)
            lines.append(
                f"| {name} | {run.requests_per_second:,.0f} | {run.p50_ms:.2f} "
                f"| {run.p99_ms:.2f} | {run.errors} | {run.api_cpu_per_second:.2f} | {rounds} |"
            )
        lines += [
            "",
            f"API settings: {_settings(self.api_settings)}; the rest at their defaults.",
            "",
            f"W2 under attack ÷ quiet: **{self.ratio:.3f}** (target ≥ {TARGET:g}: "
            f"{'PASS' if self.passed else 'FAIL'}). API RSS {self.rss_before_mb:.1f} MB before "
            f"the attacks, {self.rss_after_mb:.1f} MB after, peak {self.peak_rss_mb:.1f} MB.",
            "",
            "| attacker | requests | req/s | MB sent | mean response ms | API CPU ms/request "
            "alone | HTTP statuses | error codes | refused | no answer |",
            "|---|--:|--:|--:|--:|--:|---|---|--:|---|",
        ]
        for kind, tally in self.attackers.items():
            lines.append(
                f"| {kind} | {tally.requests:,} | {tally.requests_per_second:,.1f} "
                f"| {tally.bytes_sent / MB:,.1f} | {tally.mean_response_ms:.1f} "
                f"| {self.cpu_ms_per_attack.get(kind, 0.0):.1f} "
                f"| {_counts(tally.statuses)} | {_counts(tally.codes)} | {tally.refused:,} "
                f"| {_counts(tally.transport_errors) or '0'} |"
            )
        return lines


def _settings(settings: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings.items())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in sorted(counts.items()))


def w2_failures(before: MetricsSnapshot, after: MetricsSnapshot, operation: str) -> int:
    """Requests named `operation` the API counted as anything but ok between two scrapes."""

    def failed(snapshot: MetricsSnapshot) -> float:
        return sum(
            n
            for (name, outcome), n in snapshot.requests.items()
            if name == operation and outcome != "ok"
        )

    return round(failed(after) - failed(before))


def w2_round(
    api: Server, workload: Workload, load: LoadSettings, *, attacked: bool
) -> tuple[W2Round, list[Tally], int]:
    """One wrk run of W2, beside the attackers if `attacked`; their tallies and the peak RSS."""
    before = scrape(api)
    with sampling.PeakRss(api.pid) as peak:
        if attacked:
            with Attackers(api.port, workload.variables["id"]) as attackers:
                time.sleep(ATTACK_LEAD_SECONDS)
                cpu_before = sampling.cpu_seconds(api.pid)
                result = _wrk(api, workload, load)
                cpu = sampling.cpu_seconds(api.pid) - cpu_before
                tallies = attackers.stop()
        else:
            cpu_before = sampling.cpu_seconds(api.pid)
            result = _wrk(api, workload, load)
            cpu = sampling.cpu_seconds(api.pid) - cpu_before
            tallies = []
        time.sleep(SETTLE_SECONDS)
    api.check_alive()
    after = scrape(api)
    measured = W2Round(
        attacked=attacked,
        requests=result.requests,
        seconds=result.seconds,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        non_2xx=result.non_2xx,
        timeouts=result.timeouts,
        failed=w2_failures(before, after, workload.operation),
        cpu_seconds=cpu,
    )
    return measured, tallies, peak.peak


def _wrk(api: Server, workload: Workload, load: LoadSettings) -> wrk.WrkResult:
    return wrk.run(
        load.wrk,
        api.graphql_url,
        workload.bodies(),
        seconds=load.duration,
        connections=load.connections,
        threads=load.threads,
        script_dir=load.scratch,
    )


def cpu_per_attack(api: Server, w2: Workload, kind: str, seconds: float) -> float:
    """The API's CPU ms per request of one attacker running alone for `seconds`."""
    cpu_before = sampling.cpu_seconds(api.pid)
    with Attackers(api.port, w2.variables["id"], (kind,)) as attackers:
        time.sleep(seconds)
        (tally,) = attackers.stop()
    time.sleep(SETTLE_SECONDS)
    cpu = sampling.cpu_seconds(api.pid) - cpu_before
    return cpu * 1000 / tally.requests if tally.requests else 0.0


def run_attacks(database_url: str, w2: Workload, load: LoadSettings) -> AttackResults:
    """Start an API that needs a token to write, and measure W2 on it quiet and attacked."""
    settings = {"API_TOKEN": secrets.token_urlsafe(32)}
    log_dir = load.scratch / "attacks"
    log_dir.mkdir(exist_ok=True)
    api = start_api(database_url, log_dir, name=ATTACKED_API, settings=settings)
    try:
        wait_ready([api])
        warm_up(api, w2, load)
        return measure(api, w2, load, settings)
    finally:
        api.stop()


def measure(
    api: Server, w2: Workload, load: LoadSettings, settings: dict[str, str]
) -> AttackResults:
    rounds: list[W2Round] = []
    totals = {kind: Tally(kind) for kind in KINDS}
    rss_before = sampling.rss_bytes(api.pid)
    peak = rss_before
    for number in range(load.rounds):
        order = (False, True) if number % 2 == 0 else (True, False)
        for attacked in order:
            print(f"  W2 {'under attack' if attacked else 'quiet'} ...", flush=True)
            measured, tallies, round_peak = w2_round(api, w2, load, attacked=attacked)
            rounds.append(measured)
            for tally in tallies:
                totals[tally.kind].add(tally)
            if attacked:
                peak = max(peak, round_peak)
    rss_after = sampling.rss_bytes(api.pid)
    print("  each attacker alone ...", flush=True)
    alone = {kind: cpu_per_attack(api, w2, kind, load.duration) for kind in KINDS}
    return AttackResults(
        quiet=W2Summary.of([r for r in rounds if not r.attacked]),
        attacked=W2Summary.of([r for r in rounds if r.attacked]),
        attackers=totals,
        rss_before_mb=rss_before / MB,
        rss_after_mb=rss_after / MB,
        peak_rss_mb=peak / MB,
        cpu_ms_per_attack=alone,
        # The token is random per run and secret to the attackers; say only that it was set.
        api_settings={
            **dict.fromkeys(settings, "(set)"),
            **{name: os.environ[name] for name in LIMIT_SETTINGS if name in os.environ},
        },
        rounds=load.rounds,
        duration=load.duration,
        notes=[
            "The attackers are Python processes on the same machine: their CPU competes "
            "with the API's and wrk's, as a co-located attacker's would.",
            "API CPU ms/request alone: the API process's CPU time while that attacker ran by "
            "itself for one run (after the rounds), over the requests it sent: what one "
            "attack request costs the server.",
            "API CPU s/s: the API process's CPU seconds per second of W2's runs; below 1.0 "
            "quiet, other processes (wrk, Postgres, other work on the machine) held the "
            "cores it could have used.",
            "RSS before: the attacked API after its warm-up, before the first round; after: "
            "once the last round and its settling were over.",
        ],
    )
