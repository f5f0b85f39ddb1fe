"""Drive load with wrk: a Lua script that POSTs one JSON body, and its --latency report parsed."""

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import BenchError

REQUEST_TIMEOUT = "30s"  # wrk's default (2 s) would count W3's slow answers as timeouts
PERCENTILES = ("50", "75", "90", "99")
_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(
            "wrk is not installed: apt-get install wrk (make bench installs it when run as root)"
        )
    return path


def _long_string(texts: Sequence[str]) -> Callable[[str], str]:
    """Lua long brackets whose level none of `texts` can close early."""
    level = 0
    while any(f"]{'=' * level}]" in text for text in texts):
        level += 1
    quote = "=" * level
    return lambda text: f"[{quote}[{text}]{quote}]"


def lua_script(bodies: Sequence[bytes]) -> str:
    """POST one body, or cycle through several: each wrk thread starts at its own offset."""
    texts = [body.decode() for body in bodies]
    quoted = _long_string(texts)
    head = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    if len(texts) == 1:
        return head + f"wrk.body = {quoted(texts[0])}\n"
    listed = ",\n".join(quoted(text) for text in texts)
    return (
        head
        + f"local bodies = {{\n{listed}\n}}\n"
        + "local threads = 0\n"
        + "function setup(thread)\n"
        + "  thread:set('offset', threads * 7919)\n"
        + "  threads = threads + 1\n"
        + "end\n"
        + "local index = 0\n"
        + "function init(args)\n"
        + "  index = (offset or 0) % #bodies\n"
        + "end\n"
        + "function request()\n"
        + "  index = index % #bodies + 1\n"
        + "  return wrk.format(nil, nil, nil, bodies[index])\n"
        + "end\n"
    )


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    latency_ms: dict[str, float]
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["99"]

    @property
    def timeouts(self) -> int:
        return self.socket_errors.get("timeout", 0)


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"cannot read wrk's duration {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse(output: str) -> WrkResult:
    """Read wrk --latency's report."""
    latency = {p: _milliseconds(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)}
    summary = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if summary is None or rate is None or not all(p in latency for p in PERCENTILES):
        raise BenchError(f"cannot read wrk's report:\n{output}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {}
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(summary[1]),
        seconds=_milliseconds(summary[2]) / 1000,
        requests_per_second=float(rate[1]),
        latency_ms={p: latency[p] for p in PERCENTILES},
        socket_errors=socket_errors,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
    )


def run(
    wrk: str,
    url: str,
    bodies: Sequence[bytes],
    *,
    seconds: int,
    connections: int,
    threads: int,
    script_dir: Path,
) -> WrkResult:
    """`seconds` of load at `connections` connections; bounded by a subprocess timeout."""
    script = script_dir / "request.lua"
    script.write_text(lua_script(bodies))
    command = [
        wrk,
        f"--threads={max(1, min(threads, connections))}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        f"--timeout={REQUEST_TIMEOUT}",
        "--latency",
        f"--script={script}",
        url,
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - wrk by its full path, our arguments
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {seconds + 60} s") from None
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse(completed.stdout)
