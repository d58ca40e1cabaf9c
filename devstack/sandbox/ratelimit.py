"""A per-credential token bucket.

``rate_per_minute`` tokens flow in per minute up to ``burst`` (``rate_per_minute`` when burst is 0).
A call that finds less than one token is refused with the whole seconds (at least 1) until the
next token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_in_s: float


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def clear(self) -> None:
        self._buckets.clear()

    def take(self, partner_key: str, rate_per_minute: int, burst: int, now: float) -> Decision:
        capacity = float(burst or rate_per_minute)
        per_s = rate_per_minute / 60.0
        tokens, last = self._buckets.get(partner_key, (capacity, now))
        tokens = min(capacity, tokens + max(0.0, now - last) * per_s)
        if tokens >= 1.0:
            tokens -= 1.0
            self._buckets[partner_key] = (tokens, now)
            return Decision(True, rate_per_minute, int(tokens), 0, (capacity - tokens) / per_s)
        self._buckets[partner_key] = (tokens, now)
        wait = (1.0 - tokens) / per_s
        return Decision(False, rate_per_minute, 0, max(1, math.ceil(wait)), (capacity - tokens) / per_s)
