"""The results: targets and checks judged, written as JSON, a markdown table and a bar chart."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.attacks import TARGET as ATTACK_TARGET
from bench.attacks import AttackResults
from bench.live import LiveResults
from bench.measure import MB, Constancy, RequestMemory, RunStats
from bench.processes import ProcessesResults
from bench.workloads import Workload

P99_OVER_P50 = 4.0
W3_RSS_RESPONSES = 3
MEMORY_CHECK = (
    f"W3 peak RSS during a single request < idle RSS + {W3_RSS_RESPONSES} x response size"
)


@dataclass
class WorkloadResult:
    workload: Workload
    api: RunStats
    # The reference run this workload is compared with (W4: the reference's W1), if any.
    reference: RunStats | None

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference.requests_per_second <= 0:
            return None
        return self.api.requests_per_second / self.reference.requests_per_second

    @property
    def value(self) -> float | None:
        """What the target is judged on: the ratio, or the API's requests/s."""
        if self.workload.target_kind == "rate":
            return self.api.requests_per_second
        return self.ratio

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value >= self.workload.target

    @property
    def target_text(self) -> str:
        if self.workload.target_kind == "rate":
            return f"≥ {self.workload.target:g}/s"
        return f"≥ {self.workload.target:.2f}"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def memory_check(w3: RunStats) -> Check:
    """W3's memory target, judged on single requests to the idle server (not under load)."""
    memory: RequestMemory | None = w3.single_request
    if memory is None:
        return Check(MEMORY_CHECK, False, "single-request memory not measured")
    response_mb = memory.response_bytes / MB
    return Check(
        MEMORY_CHECK,
        memory.within(W3_RSS_RESPONSES),
        f"largest growth over {memory.requests} sequential requests "
        f"{memory.max_growth_mb:.2f} MB = {memory.max_growth_responses:.2f} x the "
        f"{response_mb:.2f} MB response (request {memory.worst_request + 1}: "
        f"{memory.worst_rss_before_mb:.1f} MB just before, peak {memory.worst_peak_rss_mb:.1f} "
        f"MB, limit {memory.limit_mb(W3_RSS_RESPONSES):.1f} MB = "
        f"{memory.worst_rss_before_mb:.1f} + {W3_RSS_RESPONSES} x {response_mb:.2f}); "
        f"peak RSS over the {memory.requests} {memory.peak_rss_mb:.1f} MB, idle before the first "
        f"{memory.idle_rss_mb:.1f} MB; for information, idle before W3's wrk run "
        f"{w3.idle_rss_mb:.1f} MB, peak under load {w3.peak_rss_mb:.1f} MB",
    )


@dataclass
class Results:
    machine: dict[str, Any]
    config: dict[str, Any]
    catalogue: dict[str, Any]
    compared: list[str]
    constancy: Constancy
    workloads: list[WorkloadResult]
    notes: list[str] = field(default_factory=list)
    # The optional parts of a run: --attacks and --processes N.
    attacks: AttackResults | None = None
    processes: ProcessesResults | None = None
    live: LiveResults | None = None

    def checks(self) -> list[Check]:
        checks = [
            Check(
                "same data as the reference",
                True,
                f"{', '.join(self.compared)}: parsed JSON equal",
            ),
            Check(
                "SQL statements per request constant in page size",
                self.constancy.passed,
                f"W1 at first: 1 sent {self.constancy.first_1}, at first: 100 sent "
                f"{self.constancy.first_100} (each shape's very first request: "
                f"{self.constancy.first_1_cold} and {self.constancy.first_100_cold})",
            ),
        ]
        for result in self.workloads:
            api = result.api
            checks.append(
                Check(
                    f"{result.workload.name} p99 ≤ {P99_OVER_P50:g} x p50",
                    api.p99_ms <= P99_OVER_P50 * api.p50_ms,
                    f"p50 {api.p50_ms:.2f} ms, p99 {api.p99_ms:.2f} ms "
                    f"({api.p99_ms / api.p50_ms if api.p50_ms else 0:.1f}x)",
                )
            )
        w3 = self.w3()
        if w3 is not None:
            checks.append(memory_check(w3.api))
        errors = {r.workload.name: r.api.errors for r in self.workloads if r.api.errors}
        checks.append(
            Check(
                "no failed requests (non-2xx, timeouts, GraphQL errors)",
                not errors,
                ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none",
            )
        )
        if self.attacks is not None:
            attacks = self.attacks
            checks.append(
                Check(
                    f"W2 under attack ≥ {ATTACK_TARGET:g} x W2 quiet",
                    attacks.passed,
                    f"{attacks.attacked.requests_per_second:,.0f} ÷ "
                    f"{attacks.quiet.requests_per_second:,.0f} req/s = {attacks.ratio:.3f}; "
                    f"W2 errors quiet {attacks.quiet.errors}, under attack "
                    f"{attacks.attacked.errors}",
                )
            )
        if self.processes is not None:
            checks.append(
                Check(
                    f"no failed requests on {self.processes.processes} API processes",
                    self.processes.errors == 0,
                    f"{self.processes.errors} errors over W1, W2 and W6, one process and "
                    f"{self.processes.processes}",
                )
            )
        if self.live is not None:
            checks += [Check(*check) for check in self.live.checks()]
        return checks

    def w3(self) -> WorkloadResult | None:
        return next((r for r in self.workloads if r.workload.name == "W3"), None)

    def memory_json(self) -> dict[str, Any] | None:
        """The memory target as judged: W3's single requests, the API's and the reference's."""
        w3 = self.w3()
        if w3 is None:
            return None
        api = w3.api.single_request
        reference = w3.reference.single_request if w3.reference else None
        return {
            "check": MEMORY_CHECK,
            "workload": "W3",
            "responses": W3_RSS_RESPONSES,
            "limit_mb": api.limit_mb(W3_RSS_RESPONSES) if api else None,
            "passed": memory_check(w3.api).passed,
            "api": asdict(api) if api else None,
            "reference": asdict(reference) if reference else None,
            "api_idle_rss_before_load_mb": w3.api.idle_rss_mb,
            "reference_idle_rss_before_load_mb": w3.reference.idle_rss_mb if w3.reference else None,
            "api_peak_rss_under_load_mb": w3.api.peak_rss_mb,
            "reference_peak_rss_under_load_mb": w3.reference.peak_rss_mb if w3.reference else None,
        }

    def to_json(self) -> dict[str, Any]:
        workloads = {}
        for result in self.workloads:
            workload = result.workload
            workloads[workload.name] = {
                "description": workload.description,
                "document": workload.document,
                "variables": workload.variables,
                "api": asdict(result.api),
                "reference_workload": workload.reference,
                "reference": asdict(result.reference) if result.reference else None,
                "ratio": result.ratio,
                "target": {"kind": workload.target_kind, "value": workload.target},
                "passed": result.passed,
            }
        return {
            "date": self.machine["date"],
            "machine": self.machine,
            "config": self.config,
            "catalogue": self.catalogue,
            "data_equality": {"passed": True, "compared": self.compared},
            "statement_constancy": {
                "first_1": self.constancy.first_1,
                "first_100": self.constancy.first_100,
                "first_1_cold": self.constancy.first_1_cold,
                "first_100_cold": self.constancy.first_100_cold,
                "passed": self.constancy.passed,
            },
            "workloads": workloads,
            "memory_target": self.memory_json(),
            "checks": [asdict(check) for check in self.checks()],
            "all_passed": all(r.passed for r in self.workloads)
            and all(c.passed for c in self.checks()),
            "notes": self.notes,
            **({"attacks": self.attacks.to_json()} if self.attacks is not None else {}),
            **({"processes": self.processes.to_json()} if self.processes is not None else {}),
            **({"live": self.live.to_json()} if self.live is not None else {}),
        }

    def markdown(self) -> str:
        machine = self.machine
        config = self.config
        under_load = f"peak RSS MB under load ({config['connections']} connections)"
        lines = [
            f"# Benchmark {machine['date']}",
            "",
            f"{machine['cpu_count']} CPUs, Python {machine['python']}, "
            f"PostgreSQL {machine['postgres']}, {machine['wrk']}; "
            f"{self.catalogue['authors']} authors x {self.catalogue['books_per_author']} books; "
            f"{config['connections']} connections, {config['threads']} wrk threads, "
            f"{config['rounds']} rounds of {config['duration']} s per server, taking turns, "
            f"after {config['warmup']} s warm-up; "
            f"load average {machine['load_average_before'][0]:g} before, "
            f"{machine['load_average_after'][0]:g} after.",
            "",
            "| workload | API req/s | reference req/s | ratio | p50 ms | p99 ms | SQL/request "
            f"| CPU ms/request | {under_load} | target | pass/fail |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
        ]
        for result in self.workloads:
            api, ref, workload = result.api, result.reference, result.workload
            if ref is None:
                ref_text = "—"
            elif workload.reference != workload.name:
                ref_text = f"{ref.requests_per_second:,.0f} ({workload.reference})"
            else:
                ref_text = f"{ref.requests_per_second:,.0f}"
            unit = " mutations/s" if workload.target_kind == "rate" else ""
            unit = " rows/s" if workload.seeding else unit
            ratio = f"{result.ratio:.3f}" if result.ratio is not None else "—"
            lines.append(
                f"| {workload.name} | {api.requests_per_second:,.0f}{unit} | {ref_text} "
                f"| {ratio} | {api.p50_ms:.2f} | {api.p99_ms:.2f} | {api.sql_per_request:.2f} "
                f"| {api.cpu_ms_per_request:.2f} | {api.peak_rss_mb:.1f} | {result.target_text} "
                f"| {'PASS' if result.passed else 'FAIL'} |"
            )
        lines += [
            "",
            "Reference server (one SQL statement per request, building the JSON in Postgres):",
            "",
            "| workload | req/s | p50 ms | p99 ms | CPU ms/request | idle RSS MB "
            f"| {under_load} | response bytes |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for result in self.workloads:
            ref = result.reference
            if ref is None or ref.workload != result.workload.name or result.workload.seeding:
                continue
            lines.append(
                f"| {ref.workload} | {ref.requests_per_second:,.0f} | {ref.p50_ms:.2f} "
                f"| {ref.p99_ms:.2f} | {ref.cpu_ms_per_request:.2f} | {ref.idle_rss_mb:.1f} "
                f"| {ref.peak_rss_mb:.1f} | {ref.response_bytes:,} |"
            )
        lines += self.rounds_markdown()
        lines += self.memory_markdown()
        if self.attacks is not None:
            lines += self.attacks.markdown()
        if self.processes is not None:
            lines += self.processes.markdown()
        if self.live is not None:
            lines += self.live.markdown()
        lines += [
            "",
            "API responses: "
            + ", ".join(
                f"{r.workload.name} {r.api.response_bytes:,} bytes (idle RSS "
                f"{r.api.idle_rss_mb:.1f} MB)"
                for r in self.workloads
            ),
            "",
            "Checks:",
            "",
        ]
        lines += [f"- {'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks()]
        notes = [
            *self.notes,
            *(self.attacks.notes if self.attacks else []),
            *(self.processes.notes if self.processes else []),
            *(self.live.notes if self.live else []),
        ]
        if notes:
            lines += ["", "Notes:", ""]
            lines += [f"- {note}" for note in notes]
        return "\n".join(lines) + "\n"

    def rounds_markdown(self) -> list[str]:
        """Each round's requests/s, API against reference, in the order the rounds ran."""
        lines = [
            "",
            "Rounds (API req/s ÷ reference req/s, each pair measured back to back):",
            "",
        ]
        for result in self.workloads:
            ref = result.reference
            api_rounds = result.api.rounds_requests_per_second
            if ref is None or ref.workload != result.workload.name:
                rounds = ", ".join(f"{value:,.0f}" for value in api_rounds)
                lines.append(f"- {result.workload.name}: API {rounds}")
                continue
            pairs = zip(api_rounds, ref.rounds_requests_per_second, strict=True)
            lines.append(
                f"- {result.workload.name}: "
                + ", ".join(f"{a:,.0f} ÷ {b:,.0f} = {a / b if b else 0:.3f}" for a, b in pairs)
            )
        return lines

    def memory_markdown(self) -> list[str]:
        """W3's single-request memory, the API's and the reference's, as a table."""
        w3 = self.w3()
        if w3 is None:
            return []
        runs = [("API", w3.api, True)]
        if w3.reference is not None:
            runs.append(("reference", w3.reference, False))
        measured = [(name, run.single_request, judged) for name, run, judged in runs]
        first = next((memory for _, memory, _ in measured if memory is not None), None)
        if first is None:
            return []
        lines = [
            "",
            f"W3 memory, one request at a time: {first.requests} sequential requests over one "
            f"connection to the otherwise idle server after its wrk run, RSS sampled every "
            f"{first.sample_interval_ms:g} ms while each was in flight. Growth: a request's "
            f"peak RSS minus the RSS just before it (the largest of the {first.requests}); "
            f"target: growth < {W3_RSS_RESPONSES} x response size. The RSS before the wrk run "
            f"is shown too: memory the process took under load and kept is reused by these "
            f"requests, so it does not show as growth.",
            "",
            "| server | response bytes | idle RSS MB before the wrk run | idle RSS MB before "
            "the first | peak RSS MB | largest growth MB | growth / response size "
            "| median growth MB | peak RSS MB under load | pass/fail |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        ]
        for name, memory, judged in measured:
            if memory is None:
                continue
            run = w3.api if judged else w3.reference
            assert run is not None
            verdict = "PASS" if memory.within(W3_RSS_RESPONSES) else "FAIL"
            lines.append(
                f"| {name} | {memory.response_bytes:,} | {run.idle_rss_mb:.1f} "
                f"| {memory.idle_rss_mb:.1f} "
                f"| {memory.peak_rss_mb:.1f} | {memory.max_growth_mb:.2f} "
                f"| {memory.max_growth_responses:.2f}x | {median(memory.growth_mb):.2f} "
                f"| {run.peak_rss_mb:.1f} | {verdict if judged else f'({verdict})'} |"
            )
        return lines

    def chart(self, path: Path) -> None:
        figure = Figure(figsize=(10, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        ratios, rate = figure.subplots(1, 2, width_ratios=[4, 1.3])
        compared = [r for r in self.workloads if r.workload.target_kind == "ratio"]
        labels = [
            r.workload.name
            if r.workload.reference == r.workload.name
            else f"{r.workload.name}\n(vs ref {r.workload.reference})"
            for r in compared
        ]
        values = [r.ratio or 0.0 for r in compared]
        colours = ["tab:green" if r.passed else "tab:red" for r in compared]
        positions = list(range(len(compared)))
        ratios.bar(positions, values, color=colours, width=0.6, label="API / reference req/s")
        for x, result in zip(positions, compared, strict=True):
            ratios.hlines(result.workload.target, x - 0.4, x + 0.4, colors="black")
            ratios.annotate(
                f"{values[x]:.3f}",
                (x, values[x]),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
            )
        ratios.plot([], [], color="black", label="target")
        ratios.set_xticks(positions, labels)
        ratios.set_ylabel("API req/s ÷ reference req/s")
        ratios.set_ylim(0, max([1.0, *values, *(r.workload.target for r in compared)]) * 1.15)
        ratios.set_title("Throughput against the reference")
        ratios.legend(loc="upper right")
        for result in (r for r in self.workloads if r.workload.target_kind == "rate"):
            value = result.api.requests_per_second
            rate.bar([0], [value], color="tab:green" if result.passed else "tab:red", width=0.6)
            rate.axhline(result.workload.target, color="black")
            rate.annotate(
                f"{value:,.0f}",
                (0, value),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
            )
            rate.set_xticks([0], [result.workload.name])
            rate.set_xlim(-0.8, 0.8)
            rate.set_ylim(0, max(value, result.workload.target) * 1.2)
            rate.set_ylabel("mutations/s")
            rate.set_title(f"target {result.target_text}")
        figure.suptitle(
            f"{self.catalogue['authors']} authors x {self.catalogue['books_per_author']} books, "
            f"{self.config['connections']} connections, {self.machine['date']}"
        )
        figure.savefig(path, dpi=110)

    def write(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": directory / "latest.json",
            "md": directory / "latest.md",
            "png": directory / "latest.png",
        }
        paths["json"].write_text(json.dumps(self.to_json(), indent=2) + "\n")
        paths["md"].write_text(self.markdown())
        self.chart(paths["png"])
        return paths
