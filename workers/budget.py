"""A per-credential request budget shared by every worker process (GCRA in one Lua script).

menusync stays under klikit's rate limit instead of discovering it through 429s; when
a 429 comes anyway, :meth:`RateBudget.penalize` pushes every process back together.
"""

from __future__ import annotations

from typing import Any

from config.redis import Keys
from workers.clock import now_ms
from workers.scripts import script


class RateBudget:
    def __init__(self, client: Any, keys: Keys, business_id: int, per_minute: int, burst: int) -> None:
        if per_minute <= 0:
            raise ValueError("rate per minute must be positive")
        self.r = client
        self.key = keys.business(business_id, "budget")
        self.interval_ms = 60_000 / per_minute
        self.burst = max(1, burst)

    def __repr__(self) -> str:
        return f"RateBudget({self.key!r}, interval_ms={self.interval_ms:.1f}, burst={self.burst})"

    def take(self) -> int:
        """Take one request: 0 if it may go now, otherwise the ms to wait (nothing taken)."""
        return int(script(self.r, "budget")(keys=[self.key], args=[now_ms(), self.interval_ms, self.burst, 0]))

    def penalize(self, wait_ms: int) -> None:
        """klikit said 429: no request of this credential goes for ``wait_ms``."""
        script(self.r, "budget")(keys=[self.key], args=[now_ms(), self.interval_ms, self.burst, max(1, wait_ms)])
