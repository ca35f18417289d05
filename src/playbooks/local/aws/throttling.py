"""AWS's API throttling model, a token bucket per API, on the account's clock."""

from __future__ import annotations

import threading
from typing import Any


class TokenBucket:
    """AWS's API throttling model: a call takes a token; tokens refill at a fixed rate up to the bucket size."""

    def __init__(self, size: float, refill: float, now: Any):
        self.size = size
        self.refill = refill
        self._now = now
        self.tokens = size
        self.last = now()
        self.throttled = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            moment = self._now()
            self.tokens = min(self.size, self.tokens + (moment - self.last) * self.refill)
            self.last = moment
            # A hair of tolerance: a client pacing exactly at the refill rate must not lose to float rounding.
            if self.tokens >= 1 - 1e-6:
                self.tokens -= 1
                return True
            self.throttled += 1
            return False
