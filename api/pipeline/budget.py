"""A per-process budget for work a client can make new at will: parsing unseen documents and
compiling unseen plans.

Known documents and plans cost microseconds; new ones cost milliseconds, and a client can make
every request new. A token bucket refilled at a steady rate caps that work per second, so a
flood of new documents cannot starve requests for known ones: past the budget, a request is
answered another way (the resolvers instead of a new plan) or refused at once, never queued.
"""

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self.refused = 0  # requests refused since start: a counter for tests and metrics

    def take(self, amount: float = 1.0) -> bool:
        """Spend `amount` when the bucket holds it; False (and nothing spent) otherwise."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        self.refused += 1
        return False

    def seconds_until(self, amount: float = 1.0) -> float:
        """How long until `amount` will be there: what Retry-After says."""
        missing = max(0.0, amount - self._tokens)
        return missing / self.rate if self.rate > 0 else 60.0
