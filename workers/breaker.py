"""A shared circuit breaker per business: during a klikit outage every flush backs off together.

After ``threshold`` transient failures in a row the breaker opens for ``open_ms``, doubling
with each further failure up to ``max_open_ms``; any success closes it. From the failure
that first opens it until the next success the business is in a **klikit outage**: its
writes do not age out into dead letters (their failure clocks restart), its flushes send one
probe call per open window instead of one call per pending write, and the outage is visible
(``menusync_klikit_outage_seconds{business}``, ``menusync status``, a log line when it starts
and one when it ends). State changes are Lua scripts (``breaker_fail``, ``breaker_close``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from config.redis import Keys
from workers.clock import now_ms
from workers.metrics import KLIKIT_OUTAGE_SECONDS
from workers.scripts import script

log = structlog.get_logger("menusync.breaker")


@dataclass(frozen=True)
class Trip:
    """What one transient failure did to the breaker."""

    fails: int
    open_ms: int
    """How long the breaker is open from now (0: still closed)."""
    outage_since_ms: int | None
    """Start of the business's klikit outage, ``None`` if the breaker has not opened."""


class Breaker:
    def __init__(
        self, client: Any, keys: Keys, business_id: int, threshold: int, open_ms: int, max_open_ms: int | None = None
    ) -> None:
        self.r = client
        self.business_id = business_id
        self.key = keys.business(business_id, "breaker")
        self.threshold = threshold
        self.open_ms = open_ms
        self.max_open_ms = max(open_ms, max_open_ms if max_open_ms is not None else open_ms * 32)

    def __repr__(self) -> str:
        return f"Breaker({self.key!r})"

    def remaining_ms(self) -> int:
        """ms until the breaker closes again (0: closed)."""
        until = self.r.hget(self.key, "open_until")
        return max(0, int(until) - now_ms()) if until else 0

    def outage_since_ms(self) -> int | None:
        """When the business's current klikit outage began (``None``: no outage)."""
        since = self.r.hget(self.key, "outage_since")
        return int(since) if since else None

    def failure(self) -> Trip:
        """Count one transient failure; opens the breaker (and starts an outage) at the threshold."""
        now = now_ms()
        keep_ms = self.max_open_ms * 2 + 60_000
        fails, open_ms, since, started = script(self.r, "breaker_fail")(
            keys=[self.key], args=[now, self.threshold, self.open_ms, self.max_open_ms, keep_ms]
        )
        trip = Trip(int(fails), int(open_ms), int(since) if int(since) else None)
        if trip.outage_since_ms is not None:
            KLIKIT_OUTAGE_SECONDS.labels(business=str(self.business_id)).set((now - trip.outage_since_ms) / 1000)
        if int(started):
            log.warning("klikit outage started", business_id=self.business_id, failures_in_a_row=trip.fails)
        return trip

    def success(self) -> None:
        """Close the breaker; ends the business's klikit outage if there was one."""
        since = int(script(self.r, "breaker_close")(keys=[self.key], args=[]))
        if since:
            KLIKIT_OUTAGE_SECONDS.labels(business=str(self.business_id)).set(0)
            log.warning("klikit outage ended", business_id=self.business_id, lasted_s=(now_ms() - since) / 1000)
