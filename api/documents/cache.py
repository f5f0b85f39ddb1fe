"""Stored documents kept in this process, bounded by the memory they take, not by their count.

A count bound would let a few large documents take hundreds of megabytes; a byte bound keeps
the worst case what the budget says. A stored id never changes its text, so an entry is never
stale: it leaves only when newer ones need its room (least recently used first). Misses are
not remembered: another replica may register the document a moment later.
"""

import sys

from cachetools import LRUCache

# The key string and the cache's own bookkeeping per entry, beside the text itself.
ENTRY_OVERHEAD = 256


def entry_size(text: str) -> int:
    """Bytes an entry holds in this process: the str object, plus the per-entry overhead."""
    return sys.getsizeof(text) + ENTRY_OVERHEAD


class DocumentCache:
    """Canonical id -> text, least recently used out first, within `budget` bytes."""

    def __init__(self, budget: int) -> None:
        self._entries: LRUCache[str, str] = LRUCache(maxsize=budget, getsizeof=entry_size)

    def get(self, document_id: str) -> str | None:
        return self._entries.get(document_id)

    def put(self, document_id: str, text: str) -> None:
        """Keep `text`, unless it alone is larger than the whole budget."""
        if entry_size(text) <= self._entries.maxsize:
            self._entries[document_id] = text

    @property
    def bytes_used(self) -> int:
        return int(self._entries.currsize)

    @property
    def budget(self) -> int:
        return int(self._entries.maxsize)

    def __len__(self) -> int:
        return len(self._entries)
