"""What tracing costs: W2's request repeated through the app in process, tracing off and on.

    python -m bench.tracing_cost [--requests N] [--rounds R] [--concurrency C]

Both modes serve the same database, each request through httpx's ASGI transport: no sockets
and no HTTP server, so what is compared is the app's own work, where the spans are made. "On"
is the production set-up, from the environment: OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local
sink process that answers as a collector does, the batch processor and the OTLP/HTTP exporter
(its thread encodes and sends while the requests run). Rounds alternate off, on, off, on, so
drift on a shared machine falls on both alike; the median of each mode is reported with their
ratio, and the process's CPU time per request (the exporter's thread included), which a
busy machine disturbs less than throughput. The client runs in the same process, so both
numbers include its work too: the ratio understates what tracing costs the server alone.
A third mode samples one trace in ten (OTEL_TRACES_SAMPLER=parentbased_traceidratio), as a
busy service would. Nothing here is asserted: it is a number for the README, not a test.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.settings import Settings
from bench import catalogue as database
from bench.servers import free_port
from bench.workloads import AUTHOR_DOCUMENT, Catalogue, global_id
from tests.postgres import admin_url_or_embedded

# A collector that accepts every export: OTLP/HTTP's success is a 200 with an empty
# ExportTraceServiceResponse, which is zero bytes of protobuf.
SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


@dataclass(frozen=True)
class Mode:
    name: str
    endpoint: str | None  # None: tracing off
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Round:
    requests_per_second: float
    cpu_microseconds: float  # per request


async def one_round(settings: Settings, body: bytes, requests: int, concurrency: int) -> Round:
    """One app's throughput for `body`, after a warm-up, with `concurrency` callers."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def caller(count: int) -> None:
                for _ in range(count):
                    response = await http.post("/graphql", content=body, headers=headers)
                    if response.status_code != 200 or b'"errors"' in response.content:
                        raise SystemExit(f"W2 failed: {response.status_code} {response.text}")

            await caller(200)
            done = requests // concurrency * concurrency
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(caller(done // concurrency) for _ in range(concurrency)))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            return Round(done / seconds, cpu / done * 1e6)


async def measure(args: argparse.Namespace, url: str, modes: list[Mode]) -> dict[str, list[Round]]:
    body = json.dumps(
        {"query": AUTHOR_DOCUMENT, "variables": {"id": global_id("Author", 1)}}
    ).encode()
    seen: dict[str, list[Round]] = {mode.name: [] for mode in modes}
    for number in range(1, args.rounds + 1):
        for mode in modes:
            os.environ.update(mode.environment)  # read by the SDK as the app starts
            settings = Settings(
                _env_file=None, database_url=url, otel_exporter_otlp_endpoint=mode.endpoint
            )
            try:
                result = await one_round(settings, body, args.requests, args.concurrency)
            finally:
                for name in mode.environment:
                    del os.environ[name]
            seen[mode.name].append(result)
            print(
                f"round {number} tracing {mode.name}: {result.requests_per_second:,.0f} "
                f"requests/s, {result.cpu_microseconds:,.0f} µs CPU per request",
                flush=True,
            )
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each mode")
    parser.add_argument("--concurrency", type=int, default=8, help="callers at once")
    args = parser.parse_args(argv)

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])  # noqa: S603
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    os.environ.setdefault("OTEL_SERVICE_NAME", "catalog-api-bench")
    modes = [
        Mode("off", None),
        Mode("on", endpoint),
        Mode(
            "on, 1 in 10 sampled",
            endpoint,
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        ),
    ]
    admin = asyncio.run(admin_url_or_embedded())
    url = asyncio.run(database.create(admin))
    try:
        database.migrate(url)
        asyncio.run(database.load(url, Catalogue(authors=100, books_per_author=10)))
        seen = asyncio.run(measure(args, url, modes))
    finally:
        asyncio.run(database.drop(admin, url))
        sink.terminate()
        sink.wait()
    print(
        f"W2 in process, {args.concurrency} callers, median of {args.rounds} rounds of "
        f"{args.requests} requests:"
    )
    off_rate = statistics.median(r.requests_per_second for r in seen["off"])
    off_cpu = statistics.median(r.cpu_microseconds for r in seen["off"])
    for mode in modes:
        rate = statistics.median(r.requests_per_second for r in seen[mode.name])
        cpu = statistics.median(r.cpu_microseconds for r in seen[mode.name])
        print(
            f"  tracing {mode.name}: {rate:,.0f} requests/s ({rate / off_rate:.2f} of off), "
            f"{cpu:,.0f} µs CPU per request (+{cpu - off_cpu:,.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
