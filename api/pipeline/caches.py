"""A least-recently-used cache bounded by bytes, not by count.

A count says nothing about memory: 512 documents can be 512 KB or 7 GB. Each entry here is
charged what it holds (the caller's estimate, which may grow as the entry learns more, such as
compiled plans) and the least recently used entries leave until the total fits the budget.
"""

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByteBoundedCache(Generic[K, V]):
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.bytes = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep `value`, charged `size` bytes; one larger than the whole budget is not kept."""
        self.discard(key)
        if size > self.budget:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        self._evict()

    def grow(self, key: K, extra: int) -> None:
        """Charge an entry for what it has learnt since it was put (a compiled plan, say)."""
        found = self._entries.get(key)
        if found is None:
            return
        value, size = found
        self._entries[key] = (value, size + extra)
        self.bytes += extra
        self._evict()

    def discard(self, key: K) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.bytes -= found[1]

    def _evict(self) -> None:
        while self.bytes > self.budget and self._entries:
            _, (_, size) = self._entries.popitem(last=False)
            self.bytes -= size


class SeenTwice:
    """Whether a key was seen before, among roughly the last `window` to twice that many keys.

    A doorkeeper in front of a cache: a key is kept only once it comes back, so requests made
    once (a page at a cursor, a search) neither take memory nor push out the ones that repeat.
    Two sets of hashes, the older dropped when the newer fills: constant time, and at most
    twice `window` integers held.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def __call__(self, key: object) -> bool:
        digest = hash(key)
        if digest in self._current or digest in self._previous:
            return True
        if len(self._current) >= self.window:
            self._previous, self._current = self._current, set()
        self._current.add(digest)
        return False
