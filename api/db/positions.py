"""WAL positions (LSNs): Postgres's text form, and how far a replica is behind the primary.

A position is a byte offset in the write-ahead log; Postgres shows it as two hexadecimal
halves, `16/B374D848`. Comparing positions tells whether a replica has replayed a write.
How far behind a replica is in seconds is measured on this process's clock, from samples of
the primary's position: the replica is as far behind as the oldest sampled primary position
it has not replayed yet is old. Postgres's own `now() - pg_last_xact_replay_timestamp()` is
the age of the last replayed commit, which grows on an idle database that is fully caught up.
"""

import re
from collections import deque
from typing import NamedTuple

HALF = 32
MAX_HALF = 0xFFFFFFFF
LSN = re.compile(r"(?P<high>[0-9A-Fa-f]{1,8})/(?P<low>[0-9A-Fa-f]{1,8})")
MAX_SAMPLES = 4096  # ten minutes of samples at the default poll interval


def parse_lsn(text: str) -> int | None:
    """`16/B374D848` as a number, or None for anything that is not an LSN."""
    match = LSN.fullmatch(text.strip())
    if match is None:
        return None
    return int(match["high"], 16) << HALF | int(match["low"], 16)


def format_lsn(position: int) -> str:
    return f"{position >> HALF:X}/{position & MAX_HALF:X}"


class Sample(NamedTuple):
    at: float  # time.monotonic()
    position: int


class PrimaryPositions:
    """The primary's position over the last while, to tell replicas' lag in seconds and bytes."""

    def __init__(self) -> None:
        self._samples: deque[Sample] = deque(maxlen=MAX_SAMPLES)

    def note(self, at: float, position: int) -> None:
        self._samples.append(Sample(at, position))

    @property
    def latest(self) -> int | None:
        return self._samples[-1].position if self._samples else None

    def lag(self, replayed: int, now: float) -> tuple[float, int] | None:
        """Seconds and bytes a replica that has replayed up to `replayed` is behind; None
        until the primary's position has been read once."""
        latest = self.latest
        if latest is None:
            return None
        oldest_missing = next((s.at for s in self._samples if s.position > replayed), None)
        seconds = 0.0 if oldest_missing is None else max(0.0, now - oldest_missing)
        return seconds, max(0, latest - replayed)

    def forget_before(self, replayed: int) -> None:
        """Drop the samples every replica has replayed: they can no longer measure a lag."""
        while len(self._samples) > 1 and self._samples[0].position <= replayed:
            self._samples.popleft()
