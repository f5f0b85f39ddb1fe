"""Who is in a session's way: sampled while it waits, because a lock timeout forgets it.

Postgres cancels a statement that hits `lock_timeout` without saying which relation it
waited for or who held it; by then `pg_blocking_pids` is empty. A watcher on a second
connection samples the waiting session a few times a second and keeps the last sighting.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType

import asyncpg

SAMPLE_SECONDS = 0.2
QUERY_PREVIEW = 80

# The waiting session's ungranted lock, and each session that blocks it. A wait on a
# transaction id (as concurrent index builds do) has no relation.
BLOCKERS = """
SELECT CASE WHEN l.relation IS NOT NULL THEN 'a lock on ' || l.relation::regclass::text
            WHEN l.locktype IN ('virtualxid', 'transactionid') THEN 'another transaction to end'
            ELSE 'a ' || l.locktype || ' lock' END AS target,
       b.pid, b.application_name, b.state,
       extract(epoch FROM now() - b.xact_start)::float8 AS transaction_age,
       extract(epoch FROM now() - b.query_start)::float8 AS query_age,
       b.query
FROM pg_locks l
CROSS JOIN LATERAL unnest(pg_blocking_pids(l.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE l.pid = $1 AND NOT l.granted
ORDER BY b.xact_start NULLS LAST
"""


@dataclass(frozen=True)
class Blocker:
    target: str
    pid: int
    application_name: str
    state: str
    transaction_age: float | None
    query_age: float | None
    query: str

    def describe(self) -> str:
        query = " ".join(self.query.split())
        if len(query) > QUERY_PREVIEW:
            query = query[: QUERY_PREVIEW - 1] + "…"
        ages = []
        if self.transaction_age is not None:
            ages.append(f"transaction open {self.transaction_age:.1f} s")
        if self.query_age is not None:
            ages.append(f"last query started {self.query_age:.1f} s ago")
        details = ", ".join(
            [f"application_name {self.application_name or '(none)'!r}", self.state, *ages]
        )
        return f"pid {self.pid} ({details}): {query!r}"


class LockWatch:
    """Samples the session `pid` on `observer` until the block ends; keeps the last blockers."""

    def __init__(self, observer: asyncpg.Connection, pid: int) -> None:
        self.observer = observer
        self.pid = pid
        self.blockers: list[Blocker] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "LockWatch":
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        """Until cancelled; a lost observer only costs the report its details."""
        while True:
            try:
                found = await self.observer.fetch(BLOCKERS, self.pid)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                return
            if found:
                self.blockers = [Blocker(**dict(row)) for row in found]
            await asyncio.sleep(SAMPLE_SECONDS)

    def describe(self) -> str:
        """One line: the lock waited for and the sessions in the way, as last seen."""
        if not self.blockers:
            return "a lock wait timed out before its blocker could be seen"
        target = self.blockers[0].target
        sessions = "; ".join(blocker.describe() for blocker in self.blockers)
        return f"waiting for {target}, blocked by {sessions}"
