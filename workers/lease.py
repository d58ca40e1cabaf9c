"""Leases: one holder of a per-business hold at a time (design.md I6), recovered in seconds.

A lease is a Redis key holding a random token with a short TTL (``MENUSYNC_LEASE_TTL_MS``,
10 s by default). While the holder works, a :class:`LeaseHeartbeat` thread renews it every
TTL/3, however long one klikit call blocks; if the holder dies (SIGKILL, power loss) nobody
renews it and it expires within one TTL. Every renewal checks the token in the same Lua
script (``lease_renew``), so a holder that lost its lease (it expired during a stall, and
another worker took it) learns so at the next renewal: the lease is marked lost (one log
line, ``menusync_lease_lost_total``) and the holder's next :meth:`Lease.ensure_held`, which
runs just before every klikit write (token compared in Lua, ``lease_check``), raises
:class:`LeaseLost`.

The flush lease (:class:`BusinessLease`) adds the business's *dirty* flag: a nudge that
finds the lease taken sets it and leaves; the holder sees the flag when it tries to release
and flushes once more, so no nudge is lost. A message that finds the lease taken also makes
sure one flush message waits for the lease to expire (:meth:`BusinessLease.watch`), so a
dead holder's work is picked up as soon as its lease is gone.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import redis
import structlog

from config.redis import Keys
from workers.metrics import LEASE_LOST
from workers.scripts import script

log = structlog.get_logger("menusync.lease")


class LeaseLost(Exception):
    """The lease expired or was taken while its holder still worked under it."""


class Lease:
    """A token lease on ``key`` for ``ttl_ms``. ``kind`` and ``business_id`` name it in logs and metrics."""

    def __init__(self, client: Any, key: str, ttl_ms: int, *, kind: str, business_id: int) -> None:
        self.r = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.kind = kind
        self.business_id = business_id
        self.token: str | None = None
        self.lost = threading.Event()
        self._lost_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind}, business={self.business_id}, held={self.token is not None})"

    def acquire(self) -> bool:
        token = secrets.token_hex(8)
        if self.r.set(self.key, token, nx=True, px=self.ttl_ms):
            self.token = token
            self.lost.clear()
            return True
        return False

    def renew(self) -> bool:
        """Extend the lease by a full TTL if it is still ours (token checked in Lua); ``False``: lost."""
        token = self.token
        if token is None or self.lost.is_set():
            return False
        if script(self.r, "lease_renew")(keys=[self.key], args=[token, self.ttl_ms]):
            return True
        self._mark_lost()
        return False

    def ensure_held(self) -> None:
        """The fence before a write: raise :class:`LeaseLost` unless the lease is still ours (token in Lua).

        It does not extend the lease (the heartbeat does), so that a holder that dies right after
        a write still frees its business 2/3 to 1 TTL after its last heartbeat, not a full TTL later.
        """
        token = self.token
        if token is None or self.lost.is_set():
            raise LeaseLost(f"{self.kind} lease of business {self.business_id} lost")
        if not script(self.r, "lease_check")(keys=[self.key], args=[token]):
            self._mark_lost()
            raise LeaseLost(f"{self.kind} lease of business {self.business_id} lost")

    def release(self) -> None:
        """Give the lease up at once (only if it is still ours: the token is compared in Lua)."""
        token, self.token = self.token, None
        if token is not None:
            script(self.r, "lease_drop")(keys=[self.key], args=[token])

    def keep_alive(self) -> LeaseHeartbeat:
        """A heartbeat for this lease; use as a context manager around the work it guards."""
        return LeaseHeartbeat(self)

    def held_by_anyone(self) -> bool:
        return bool(self.r.exists(self.key))

    def _mark_lost(self) -> None:
        with self._lost_lock:
            if self.lost.is_set():
                return
            self.lost.set()
        LEASE_LOST.labels(kind=self.kind).inc()
        log.warning(
            "lease lost: the holder stops before its next write",  # a publish: its one call goes on
            kind=self.kind,
            business_id=self.business_id,
            ttl_ms=self.ttl_ms,
        )


class LeaseHeartbeat:
    """Renews a held lease every TTL/3 from a daemon thread, for as long as the ``with`` block runs.

    The renewals go on while the holder's thread is blocked in a klikit call, so a slow call
    never costs the lease; a dead process stops renewing, so its lease expires within one TTL.
    A Redis error skips one beat (the next one tries again). When a renewal finds the lease
    gone the lease is marked lost and the heartbeat ends.
    """

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.interval_s = max(0.01, lease.ttl_ms / 3 / 1000)
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-heartbeat-{lease.kind}-{lease.business_id}", daemon=True
        )

    def __repr__(self) -> str:
        return f"LeaseHeartbeat({self.lease!r}, beats={self.beats})"

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                held = self.lease.renew()
            except redis.RedisError as exc:
                log.warning("lease heartbeat: redis error", kind=self.lease.kind, error=str(exc))
                continue
            self.beats += 1
            if not held:
                return


class BusinessLease(Lease):
    """The per-business flush lease, with the dirty flag that makes a nudge while held count."""

    def __init__(self, client: Any, keys: Keys, business_id: int, ttl_ms: int) -> None:
        super().__init__(client, keys.business(business_id, "lease"), ttl_ms, kind="flush", business_id=business_id)
        self.dirty_key = keys.flush_dirty(business_id)
        self.scheduled_key = keys.flush_scheduled(business_id)
        self.watch_key = keys.business(business_id, "flush", "watch")

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

    def watch(self) -> int | None:
        """Someone else holds the lease: become the one watcher of its expiry, if nobody is.

        Answers the lease's remaining ms when the caller must send a flush for that moment
        (it is then the watcher until then), ``None`` when another watcher exists, and ``0``
        when the lease is free now (acquire again).
        """
        remaining = int(script(self.r, "lease_watch")(keys=[self.key, self.watch_key], args=[self.ttl_ms]))
        if remaining == -2:
            return 0
        return remaining if remaining > 0 else None
