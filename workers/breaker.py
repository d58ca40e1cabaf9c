"""A shared circuit breaker per business: during an outage every flush backs off together.

After ``threshold`` transient failures in a row the breaker opens for ``open_ms``,
doubling with each further failure (capped at 32x); any success closes it.
"""

from __future__ import annotations

from typing import Any

from config.redis import Keys
from workers.ledger import now_ms


class Breaker:
    def __init__(self, client: Any, keys: Keys, business_id: int, threshold: int, open_ms: int) -> None:
        self.r = client
        self.key = keys("breaker", business_id)
        self.threshold = threshold
        self.open_ms = open_ms

    def __repr__(self) -> str:
        return f"Breaker({self.key!r})"

    def remaining_ms(self) -> int:
        """ms until the breaker closes again (0: closed)."""
        until = self.r.hget(self.key, "open_until")
        return max(0, int(until) - now_ms()) if until else 0

    def failure(self) -> int:
        fails = int(self.r.hincrby(self.key, "fails", 1))
        if fails >= self.threshold:
            factor = 2 ** min(fails - self.threshold, 5)
            self.r.hset(self.key, "open_until", now_ms() + self.open_ms * factor)
        self.r.pexpire(self.key, self.open_ms * 64 + 60_000)
        return fails

    def success(self) -> None:
        self.r.delete(self.key)
