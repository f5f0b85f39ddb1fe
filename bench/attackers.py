"""Attack clients for `python -m bench --attacks`: each its own process, one real socket each.

Two attacks from issue 15, each looping as fast as the server answers it:

- `seed`: an anonymous `seedCatalog` of 70,000 authors `{"name": "a"}` in its variables
  (about 0.91 MB), sent with no token to an API that needs one for writes. Before the front
  door, its variables were coerced before the permission check: 2.8 s of CPU per request.
- `documents`: every request a document the server has never seen, valid and about 30-60 KB
  (under MAX_DOCUMENT_BYTES), so no cache can answer it and each one must be lexed, parsed and
  validated anew.

Run as `python -m bench.attackers <kind> --port N`: it attacks until SIGTERM, then prints
what the server answered (statuses and GraphQL error codes, counted) as one JSON line. A
process per attacker keeps its CPU off the benchmark's own interpreter and its requests on
real sockets, as an attacker's would be.
"""

import argparse
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any

from bench.servers import HOST, PROJECT_ROOT, BenchError

KINDS = ("seed", "documents")
SEED_AUTHORS = 70_000
# One author repeated 70,000 times; the first author's name carries a counter, so no two
# requests are the same bytes and nothing keyed on the body can answer one from memory.
SEED_DOCUMENT = (
    "mutation Seed($input: SeedCatalogInput!) { seedCatalog(input: $input) "
    "{ authors { id } userErrors { field message code } } }"
)
# The padding of a cache-busting document, drawn per request: 30-60 KB under the 64 KB
# MAX_DOCUMENT_BYTES, so it is refused only by what the server decides, not by its size.
PADDING_BYTES = (30_000, 58_000)
BUSTER_ALIASES = 5
REQUEST_TIMEOUT = 60.0
# How long the parent waits for an attacker to report once asked to stop.
STOP_TIMEOUT = 20.0
HEADERS = {"Content-Type": "application/json"}
TRANSPORT_ERROR_PAUSE = 0.01


class Stop(Exception):
    """SIGTERM: stop attacking, even in the middle of a request, and report."""


def seed_bodies() -> Iterator[bytes]:
    """Anonymous 0.91 MB `seedCatalog` bodies, each differing in its first author's name."""
    rest = b',{"name":"a"}' * (SEED_AUTHORS - 1)
    head = (
        json.dumps({"operationName": "Seed", "query": SEED_DOCUMENT}, separators=(",", ":"))[:-1]
        + ',"variables":{"input":{"authors":[{"name":"a'
    ).encode()
    tail = rest + b"]}}}"
    number = 0
    while True:
        number += 1
        yield head + str(number).encode() + b'"}' + tail


def busting_document(number: int, rng: random.Random) -> str:
    """A valid query the server has not seen: its own name, aliases and comment padding.

    It reads one author, as a client would; what makes it new is only its text.
    """
    padding = base64.encodebytes(rng.randbytes(rng.randint(*PADDING_BYTES) * 3 // 4)).decode()
    comment = "".join(f"# {line}\n" for line in padding.splitlines())
    fields = " ".join(
        f"a{number}x{alias}: author(id: $id) {{ id name }}" for alias in range(BUSTER_ALIASES)
    )
    return f"{comment}query Bust{number}($id: ID!) {{ {fields} }}\n"


def document_bodies(author_id: str, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)  # noqa: S311 - traffic, not a secret
    number = 0
    while True:
        number += 1
        payload = {
            "operationName": f"Bust{number}",
            "query": busting_document(number, rng),
            "variables": {"id": author_id},
        }
        yield json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class Tally:
    """What one attacker sent and what the server answered it."""

    kind: str
    requests: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    # HTTP status -> responses; the first GraphQL error code (or OK, or NO_JSON) -> responses.
    statuses: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    # Requests that got no answer: the exception's name -> count.
    transport_errors: dict[str, int] = field(default_factory=dict)
    # Time spent waiting for answers, summed over the requests.
    response_seconds: float = 0.0

    @property
    def refused(self) -> int:
        """Responses carrying a GraphQL error code: the server said no."""
        return sum(n for code, n in self.codes.items() if code not in ("OK", "NO_JSON"))

    @property
    def mean_response_ms(self) -> float:
        return self.response_seconds * 1000 / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "refused": self.refused,
            "requests_per_second": self.requests_per_second,
            "mean_response_ms": self.mean_response_ms,
        }

    def add(self, other: "Tally") -> None:
        """Count `other`'s requests in this tally too (the same attack, another run)."""
        self.requests += other.requests
        self.bytes_sent += other.bytes_sent
        self.seconds += other.seconds
        self.response_seconds += other.response_seconds
        for mine, theirs in (
            (self.statuses, other.statuses),
            (self.codes, other.codes),
            (self.transport_errors, other.transport_errors),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Tally":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def answer_code(body: bytes) -> str:
    """The response's first GraphQL error code, OK for data without errors, NO_JSON else."""
    try:
        payload = json.loads(body)
    except ValueError:
        return "NO_JSON"
    if not isinstance(payload, dict):
        return "NO_JSON"
    errors = payload.get("errors")
    if not errors:
        return "OK" if payload.get("data") is not None else "NO_JSON"
    first = errors[0] if isinstance(errors, list) and errors else {}
    extensions = first.get("extensions") if isinstance(first, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return str(code) if code else "NO_CODE"


def attack(kind: str, port: int, bodies: Iterator[bytes]) -> Tally:
    """Send `bodies` one after another over a keep-alive connection until Stop."""
    tally = Tally(kind)
    statuses: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    connection: http.client.HTTPConnection | None = None
    started = time.monotonic()
    try:
        for body in bodies:
            if connection is None:
                connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
            sent = time.monotonic()
            try:
                connection.request("POST", "/graphql", body=body, headers=HEADERS)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                failures[type(error).__name__] += 1
                connection.close()
                connection = None
                time.sleep(TRANSPORT_ERROR_PAUSE)  # a server that is gone: do not spin
                continue
            tally.response_seconds += time.monotonic() - sent
            tally.requests += 1
            tally.bytes_sent += len(body)
            statuses[str(response.status)] += 1
            codes[answer_code(answer)] += 1
            if response.will_close:
                connection.close()
                connection = None
    except Stop:
        pass
    finally:
        if connection is not None:
            connection.close()
    tally.seconds = time.monotonic() - started
    tally.statuses = dict(statuses)
    tally.codes = dict(codes)
    tally.transport_errors = dict(failures)
    return tally


def bodies_for(kind: str, author_id: str) -> Iterator[bytes]:
    if kind == "seed":
        return seed_bodies()
    return document_bodies(author_id, seed=os.getpid())


class Attackers:
    """The attacker processes against one port: started on entry, stopped by `stop()`."""

    def __init__(self, port: int, author_id: str, kinds: Sequence[str] = KINDS) -> None:
        self.port = port
        self.author_id = author_id
        self.kinds = tuple(kinds)
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> "Attackers":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        for kind in self.kinds:
            command = [sys.executable, "-m", "bench.attackers", kind, "--port", str(self.port)]
            command += ["--author-id", self.author_id]
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    command,
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        return self

    def stop(self) -> list[Tally]:
        """SIGTERM each attacker, and read its tally."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        tallies = []
        for kind, process in zip(self.kinds, self.processes, strict=True):
            try:
                out, err = process.communicate(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise BenchError(
                    f"the {kind} attacker did not stop within {STOP_TIMEOUT:g} s"
                ) from None
            lines = out.strip().splitlines()
            if not lines:
                raise BenchError(f"the {kind} attacker reported nothing: {err.strip()[-2000:]}")
            tallies.append(Tally.from_json(json.loads(lines[-1])))
        self.processes = []
        return tallies

    def __exit__(self, *_: object) -> None:
        for process in self.processes:  # only when stop() did not finish
            if process.poll() is None:
                process.kill()
                process.wait()


def _stop(signum: int, _: FrameType | None) -> None:
    raise Stop(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attackers", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--author-id", default="QXV0aG9yOjE=", help="a Relay id to read")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    tally = attack(args.kind, args.port, bodies_for(args.kind, args.author_id))
    print(json.dumps(tally.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
