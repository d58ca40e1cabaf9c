"""Everything the running sandbox holds: the world, faults, idempotency records, buckets, call record.

``now()`` is wall-clock time plus an offset the admin API can advance (to age idempotency records).
"""

from __future__ import annotations

import time

from devstack.sandbox.calls import CallLog
from devstack.sandbox.config import SandboxConfig
from devstack.sandbox.faults import FaultState
from devstack.sandbox.idempotency import IdempotencyStore
from devstack.sandbox.ratelimit import RateLimiter
from devstack.sandbox.seed import build_world
from devstack.sandbox.world import World


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.world: World = build_world(config.seed)
        self.faults = FaultState(config.faults)
        self.idempotency = IdempotencyStore()
        self.limiter = RateLimiter()
        self.calls = CallLog(config.seed.max_calls)
        self.clock_offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.clock_offset_s

    def reset(self) -> None:
        """Reseed the world; clear calls, idempotency records, buckets, scripts; restore start-up faults."""
        self.world = build_world(self.config.seed)
        self.faults.restore()
        self.idempotency.clear()
        self.limiter.clear()
        self.calls.clear()
        self.clock_offset_s = 0.0
