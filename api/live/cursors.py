"""A subscription's `cursor`: exactly which changes its client has received.

`Position(seen, upto, after)`: every change whose transaction is visible in `seen`, and,
when `upto` is given, those visible in `upto` whose log id is at most `after`. Each event
carries the position just past it, so a client that reconnects with `after: <cursor>` gets
what it missed, once. The text is opaque to clients (base64 of the three parts).
"""

import base64
import binascii
from dataclasses import dataclass

from api.live.snapshots import Snapshot

VERSION = "1"


class BadCursor(ValueError):
    """Not a cursor this service gave out."""


@dataclass(frozen=True)
class Position:
    seen: Snapshot
    upto: Snapshot | None = None
    after: int = 0

    def received(self, xid: int, change_id: int) -> bool:
        if self.seen.visible(xid):
            return True
        return self.upto is not None and change_id <= self.after and self.upto.visible(xid)

    def encode(self) -> str:
        text = f"{VERSION}|{self.seen}|{self.upto or ''}|{self.after}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> "Position":
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            version, seen, upto, after = base64.urlsafe_b64decode(padded).decode().split("|")
            if version != VERSION:
                raise ValueError(version)
            return cls(Snapshot.parse(seen), Snapshot.parse(upto) if upto else None, int(after))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadCursor("`after` is not a cursor from this service's events") from None
