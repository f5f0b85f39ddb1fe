"""The two servers as subprocesses, plain HTTP to them, and the API's /metrics."""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Settings a developer's shell may hold that would change what the API does under load.
API_SETTINGS_TO_DROP = (
    "DATABASE_DIRECT_URL",
    "DATABASE_POOLED",
    "API_TOKEN",
    "API_ENV",
    "MIGRATE_ON_START",
)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 60.0
) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:`port`; the status and the body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Server:
    name: str
    port: int
    process: "subprocess.Popen[bytes]"
    log_path: Path
    ready_path: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def graphql_url(self) -> str:
        return f"http://{HOST}:{self.port}/graphql"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(
                f"the {self.name} server exited with code {code}; the end of its log:\n"
                + self.log_tail()
            )

    def ready(self) -> bool:
        self.check_alive()
        try:
            status, _ = request(self.port, "GET", self.ready_path, timeout=5)
        except OSError:
            return False
        return status == 200

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it takes too long."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path, ready_path: str
) -> Server:
    """Start `python <args>` in its own session (Ctrl-C reaches only us; we stop it)."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    environment = dict(env)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, *args, "--port", str(port)],
            cwd=log_dir,  # away from any .env in the project: settings come from `env` only
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, port, process, log_path, ready_path)


API_ENV = {"MAX_PAGE_SIZE": "1000", "MAX_QUERY_COST": "50000", "LOG_LEVEL": "WARNING"}


def start_api(
    database_url: str,
    log_dir: Path,
    *,
    name: str = "api",
    settings: Mapping[str, str] | None = None,
) -> Server:
    """`python -m api serve` on a free port; `settings` are added to its environment."""
    env = {k: v for k, v in os.environ.items() if k not in API_SETTINGS_TO_DROP}
    env |= {"DATABASE_URL": database_url, **API_ENV, **(settings or {})}
    return start(name, ["-m", "api", "serve"], env, log_dir, "/readyz")


def start_reference(database_url: str, log_dir: Path) -> Server:
    args = ["-m", "bench.reference", "--database-url", database_url]
    return start("reference", args, os.environ, log_dir, "/healthz")


def wait_ready(servers: Sequence[Server], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        waiting = [server for server in waiting if not server.ready()]
        if not waiting:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{s.name} ({s.ready_path})" for s in waiting)
            logs = "\n".join(f"--- {s.name}\n{s.log_tail()}" for s in waiting)
            raise BenchError(f"not ready after {timeout:.0f} s: {names}\n{logs}")
        time.sleep(0.1)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class MetricsSnapshot:
    """db_statements_total and graphql_requests_total{operation,outcome} at one moment."""

    statements: float
    requests: Mapping[tuple[str, str], float]

    @property
    def total_requests(self) -> float:
        return sum(self.requests.values())

    def failed_requests(self) -> float:
        return sum(n for (_, outcome), n in self.requests.items() if outcome != "ok")


def parse_metrics(text: str) -> MetricsSnapshot:
    statements: float | None = None
    requests: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, value = match["name"], float(match["value"])
        if name == "db_statements_total":
            statements = value
        elif name == "graphql_requests_total":
            labels = dict(_LABEL.findall(match["labels"] or ""))
            key = (labels.get("operation", ""), labels.get("outcome", ""))
            requests[key] = requests.get(key, 0.0) + value
    if statements is None:
        raise BenchError("the API's /metrics has no db_statements_total")
    return MetricsSnapshot(statements, requests)


def scrape(server: Server) -> MetricsSnapshot:
    status, body = request(server.port, "GET", "/metrics")
    if status != 200:
        raise BenchError(f"GET /metrics answered {status}")
    return parse_metrics(body.decode())


def statements_of_one_request(server: Server, body: bytes) -> tuple[int, bytes]:
    """The SQL statements one request cost, by /metrics before and after it; and its body.

    The API counts a request once its response is sent, so wait for the count to move.
    """
    before = scrape(server)
    status, response = request(server.port, "POST", "/graphql", body)
    if status != 200:
        raise BenchError(f"the API answered {status}: {response[:500]!r}")
    deadline = time.monotonic() + 5
    while True:
        after = scrape(server)
        if after.total_requests >= before.total_requests + 1:
            break
        if time.monotonic() > deadline:
            raise BenchError("the API's graphql_requests_total did not count a request")
        time.sleep(0.01)
    return round(after.statements - before.statements), response
