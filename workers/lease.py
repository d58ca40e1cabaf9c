"""The per-business flush lease (design.md I6): one writer per business at a time.

The lease is a Redis key holding a random token, with a TTL well above the HTTP
timeout, renewed before every call and released by token. A nudge that finds it
taken sets the business's *dirty* flag and leaves; the holder sees the flag when
it tries to release and flushes once more, so no nudge is lost.
"""

from __future__ import annotations

import secrets
from typing import Any

from config.redis import Keys
from workers.scripts import script


class LeaseLost(Exception):
    """The lease expired or was taken while a flush still held it."""


class BusinessLease:
    def __init__(self, client: Any, keys: Keys, business_id: int, ttl_ms: int) -> None:
        self.r = client
        self.business_id = business_id
        self.ttl_ms = ttl_ms
        self.key = keys("lease", business_id)
        self.dirty_key = keys("flush", "dirty", business_id)
        self.scheduled_key = keys("flush", "scheduled", business_id)
        self.token: str | None = None

    def __repr__(self) -> str:
        return f"BusinessLease(business={self.business_id}, held={self.token is not None})"

    def acquire(self) -> bool:
        token = secrets.token_hex(8)
        if self.r.set(self.key, token, nx=True, px=self.ttl_ms):
            self.token = token
            return True
        return False

    def renew(self) -> None:
        """Extend the lease; raises :class:`LeaseLost` if it is no longer ours."""
        if self.token is None or not script(self.r, "lease_renew")(keys=[self.key], args=[self.token, self.ttl_ms]):
            self.token = None
            raise LeaseLost(f"flush lease of business {self.business_id} lost")

    def try_release(self) -> bool:
        """Release unless a nudge arrived while held; ``False`` means: flush again (still held)."""
        if self.token is None:
            return True
        result = int(
            script(self.r, "lease_release")(keys=[self.key, self.dirty_key, self.scheduled_key], args=[self.token])
        )
        if result == 0:
            return False
        self.token = None
        return True

    def release_now(self) -> None:
        """Release without the dirty check (the flush is handing its work to a retry)."""
        if self.token is not None:
            script(self.r, "lease_drop")(keys=[self.key], args=[self.token])
        self.token = None

    def held_by_anyone(self) -> bool:
        return bool(self.r.exists(self.key))
