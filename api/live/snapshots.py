"""Postgres snapshots (`pg_snapshot`) in Python: which transactions one has seen.

A reader's snapshot says which transactions had committed when it read: every xid below
`xmin`, and those below `xmax` that are not in `xip` (still running then). The live service
delivers a change once its transaction is visible in a new snapshot and was not in the one
before: commit order, whatever order the writers took their sequence numbers in.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    xmin: int
    xmax: int
    xip: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "Snapshot":
        """`xmin:xmax:xip,…` as Postgres prints it; ValueError when it is not one."""
        xmin, xmax, xip = text.split(":")
        running = frozenset(int(x) for x in xip.split(",") if x)
        snapshot = cls(int(xmin), int(xmax), running)
        if not 0 < snapshot.xmin <= snapshot.xmax or any(
            not snapshot.xmin <= x < snapshot.xmax for x in running
        ):
            raise ValueError(f"not a snapshot: {text!r}")
        return snapshot

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in sorted(self.xip))}"

    def visible(self, xid: int) -> bool:
        """Whether the transaction `xid` had committed (or aborted) in this snapshot."""
        return xid < self.xmin or (xid < self.xmax and xid not in self.xip)

    def covers(self, other: "Snapshot") -> bool:
        """Whether every transaction visible in `other` is visible here."""
        # Invisible here: `xip` and everything from `xmax` on; none of it may be visible there.
        return other.xmax <= self.xmax and not any(other.visible(x) for x in self.xip)

    def union(self, other: "Snapshot") -> "Snapshot":
        """The snapshot in which a transaction is visible when it is in either."""
        if self.covers(other):
            return self
        if other.covers(self):
            return other
        xmin, xmax = max(self.xmin, other.xmin), max(self.xmax, other.xmax)
        candidates = self.xip | other.xip
        running = frozenset(
            x
            for x in candidates
            if xmin <= x < xmax and not self.visible(x) and not other.visible(x)
        )
        return Snapshot(xmin, xmax, running)
