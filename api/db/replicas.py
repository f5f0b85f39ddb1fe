"""Read replicas: which database endpoint serves a read, and how far behind each replica is.

A replica (a Neon read-replica endpoint, a streaming hot standby) replays the primary's WAL
a little later. A query may read from any replica that answers and is within
DATABASE_READ_MAX_LAG; a query that brings a consistency token (the WAL position of its
caller's last write) only from one that has replayed that far, else from the primary: never
from a replica that is behind it. Mutations, and the payloads they return, use the primary.

What each replica has replayed is read in the background every DATABASE_READ_POLL_INTERVAL,
on a connection of its own, so choosing costs a request no round trip and a busy pool never
delays the reading. A token newer than what was last read triggers one fresh reading (shared
by every request waiting for it); still behind, the primary answers. A replica whose last
reading failed or is old is skipped. After a while without reads the polling stops and its
connections close, so an idle Neon compute may suspend; the next read wakes it and goes to
the primary until the first reading is in.
"""

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.engine import EngineOptions, create_engine, create_session_factory
from api.db.positions import PrimaryPositions, parse_lsn
from api.db.reads import PlannerPool, create_planner_pool
from api.db.urls import DatabaseTarget

log = logging.getLogger(__name__)

# On a standby, what it has replayed; on a primary (a read URL that names one), what it wrote.
REPLAYED = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
    " ELSE pg_current_wal_insert_lsn() END)::text"
)
# Read after a write commits: at or past the write's commit record, whatever ran since.
WRITTEN = "SELECT pg_current_wal_insert_lsn()::text"
PROBE_TIMEOUT = 1.0  # seconds one reading may take before the replica counts as down
IDLE_AFTER = 30.0  # seconds without a read before polling stops


@dataclass(frozen=True)
class Endpoint:
    """One database the operations run on: its planner pool and its ORM sessions."""

    name: str
    pool: PlannerPool
    sessions: async_sessionmaker[AsyncSession]
    replica: bool = False


class Probe:
    """A connection of its own that reads one endpoint's WAL position."""

    def __init__(self, target: DatabaseTarget, connect_timeout: float) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self._connection: asyncpg.Connection | None = None

    async def position(self, sql: str) -> int:
        if self._connection is None or self._connection.is_closed():
            args: dict[str, Any] = dict(self.target.connect_args)
            if self.target.pooled:
                args["statement_cache_size"] = 0
            args.setdefault("timeout", self.connect_timeout)
            dsn = self.target.url.set(drivername="postgresql")
            self._connection = await asyncpg.connect(
                dsn.render_as_string(hide_password=False), **args
            )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                text = await self._connection.fetchval(sql)
        except BaseException:
            await self.close()
            raise
        position = parse_lsn(text) if isinstance(text, str) else None
        if position is None:
            raise ValueError(f"{self.target.render()} gave no WAL position ({text!r})")
        return position

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()  # never waits on a server that went away


class Reading:
    """One reading at a time of a position, shared by everyone who asks meanwhile."""

    def __init__(self, read: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._read = read
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._read())

    async def wait(self, patience: float | None = None) -> None:
        """Until the reading in flight (or a new one) ends, or `patience` seconds; its failure
        is its reader's to note.

        asyncio.wait, not shield: a caller cancelled leaves the reading running for the others.
        """
        self.start()
        assert self._task is not None
        await asyncio.wait([self._task], timeout=patience)

    async def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class Replica:
    """A replica endpoint and what was last read of it."""

    def __init__(
        self,
        endpoint: Endpoint,
        engine: AsyncEngine,
        probe: Probe,
        primary: PrimaryPositions,
        *,
        max_lag: float,
        stale_after: float,
    ) -> None:
        self.endpoint = endpoint
        self.engine = engine
        self.probe = probe
        self.primary = primary
        self.max_lag = max_lag
        self.stale_after = stale_after
        self.replayed: int | None = None
        self.read_at: float | None = None  # time.monotonic() of the last good reading
        self.up = False
        self.lag_seconds: float | None = None
        self.lag_bytes: int | None = None
        self.reading = Reading(self._read)

    @property
    def name(self) -> str:
        return self.endpoint.name

    def usable(self, now: float) -> bool:
        """Up, read lately, and not too far behind: it may serve a read without a token."""
        return (
            self.up
            and self.read_at is not None
            and now - self.read_at <= self.stale_after
            and self.lag_seconds is not None
            and self.lag_seconds <= self.max_lag
        )

    def has_replayed(self, position: int) -> bool:
        return self.replayed is not None and self.replayed >= position

    def down(self) -> None:
        """A request found it unreachable: skip it until a reading succeeds again."""
        self.up = False

    async def _read(self) -> None:
        try:
            replayed = await self.probe.position(REPLAYED)
        except Exception as error:
            if self.up:
                log.warning("read replica %s is unavailable: %r", self.name, error)
            self.up = False
            return
        now = time.monotonic()
        if not self.up:
            log.info("read replica %s is available", self.name)
        self.replayed, self.read_at, self.up = replayed, now, True
        lag = self.primary.lag(replayed, now)
        self.lag_seconds, self.lag_bytes = (None, None) if lag is None else lag


class ReadRouter:
    """Chooses the endpoint of each operation; polls the replicas in the background."""

    def __init__(
        self,
        primary: Endpoint,
        replicas: list[Replica],
        *,
        primary_probe: Probe | None = None,
        positions: PrimaryPositions | None = None,
        poll_interval: float = 0.15,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.poll_interval = poll_interval
        self.positions = positions or PrimaryPositions()
        self._primary_probe = primary_probe
        self._primary_reading = Reading(self._read_primary)
        self._turns = itertools.count()
        self._last_read = 0.0
        self._idle = asyncio.Event()
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self.extra_readings = 0  # tokens that needed a fresh reading: work, for the tests

    async def for_read(self, after: int | None = None) -> Endpoint:
        """A replica that may serve this read (round robin), else the primary.

        `after`, the request's consistency token: only a replica that has replayed it will do.
        """
        if not self.replicas:
            return self.primary
        now = time.monotonic()
        self._last_read = now
        if self._idle.is_set():
            self._wake.set()
        usable = [r for r in self.replicas if r.usable(now)]
        if after is not None and usable:
            caught_up = [r for r in usable if r.has_replayed(after)]
            if not caught_up:
                self.extra_readings += 1
                # Bounded: a replica reconnecting after a cut must not hold the read up.
                await asyncio.gather(*(r.reading.wait(PROBE_TIMEOUT) for r in usable))
                now = time.monotonic()
                caught_up = [r for r in usable if r.usable(now) and r.has_replayed(after)]
            usable = caught_up
        if not usable:
            return self.primary
        return usable[next(self._turns) % len(usable)].endpoint

    def unavailable(self, endpoint: Endpoint) -> None:
        """A request could not read from `endpoint`: skip it until it answers a reading."""
        for replica in self.replicas:
            if replica.endpoint is endpoint:
                replica.down()

    async def write_position(self) -> int | None:
        """The primary's WAL position now: read after a write commits, it covers the write.

        None without replicas: every read is the primary's, so no token is needed, and the
        write pays no extra round trip.
        """
        if not self.replicas:
            return None
        try:
            text = await self.primary.pool.fetch_value(WRITTEN, [], read=False)
        except Exception:
            log.warning("could not read the WAL position after a write", exc_info=True)
            return None
        return parse_lsn(text) if isinstance(text, str) else None

    async def refresh(self) -> None:
        """Read every position now (the primary's first, so lags are measured against it)."""
        await self._primary_reading.wait()
        await asyncio.gather(*(r.reading.wait() for r in self.replicas))

    def start(self) -> None:
        if self.replicas and self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="read replica positions")

    async def _poll(self) -> None:
        while True:
            if time.monotonic() - self._last_read > IDLE_AFTER:
                await self._rest()
            self._primary_reading.start()
            for replica in self.replicas:
                replica.reading.start()
            await asyncio.sleep(self.poll_interval)

    async def _rest(self) -> None:
        """Stop polling until the next read, closing the probes so idle computes may suspend."""
        self._wake.clear()
        self._idle.set()
        await self._close_probes()
        await self._wake.wait()
        self._idle.clear()

    async def _read_primary(self) -> None:
        if self._primary_probe is None:
            return
        try:
            position = await self._primary_probe.position(WRITTEN)
        except Exception as error:
            log.debug("could not read the primary's WAL position: %r", error)
            return
        self.positions.note(time.monotonic(), position)
        replayed = [r.replayed for r in self.replicas if r.replayed is not None]
        if len(replayed) == len(self.replicas):
            self.positions.forget_before(min(replayed))

    async def _close_probes(self) -> None:
        for replica in self.replicas:
            await replica.reading.cancel()
            await replica.probe.close()
        await self._primary_reading.cancel()
        if self._primary_probe is not None:
            await self._primary_probe.close()

    async def aclose(self) -> None:
        """Stop polling and close every replica's pools (the primary's belong to the app)."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self._close_probes()
        for replica in self.replicas:
            await replica.endpoint.pool.close()
            await replica.engine.dispose()


def replica_names(targets: list[DatabaseTarget]) -> list[str]:
    """Labels for the metrics and the logs: host:port, numbered when two are alike."""
    names = [f"{t.host}:{t.url.port or t.connect_args.get('port', 5432)}" for t in targets]
    return [
        f"{name}#{index}" if names.count(name) > 1 else name
        for index, name in enumerate(names, start=1)
    ]


async def open_read_router(
    primary: Endpoint,
    primary_target: DatabaseTarget,
    targets: list[DatabaseTarget],
    options: EngineOptions,
    *,
    max_lag: float,
    poll_interval: float,
) -> ReadRouter:
    """The router over `targets` (none: every operation uses the primary), polling started.

    A replica's connections are tried once: the primary, not a wait, is the fallback.
    """
    replica_options = dataclasses.replace(options, connect_attempts=1)
    positions = PrimaryPositions()
    stale_after = max(1.0, 10 * poll_interval)
    replicas = []
    for name, target in zip(replica_names(targets), targets, strict=True):
        engine = create_engine(target, replica_options)
        pool = await create_planner_pool(target, replica_options, name=f"replica {name}")
        endpoint = Endpoint(name, pool, create_session_factory(engine), replica=True)
        replicas.append(
            Replica(
                endpoint,
                engine,
                Probe(target, options.connect_timeout),
                positions,
                max_lag=max_lag,
                stale_after=stale_after,
            )
        )
    router = ReadRouter(
        primary,
        replicas,
        primary_probe=Probe(primary_target, options.connect_timeout) if replicas else None,
        positions=positions,
        poll_interval=poll_interval,
    )
    router.start()
    return router
