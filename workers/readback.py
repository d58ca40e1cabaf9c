"""Reading back what klikit shows: ``getMenu`` through the credential's rate budget.

:class:`MenuReader` reads one business's menu in store mode (the snapshot the last
publish built: what the channels were sent) or business mode (the live business rows)
and parses it with :func:`klikit.menu_tree.parse_menu`. Every read takes one request from
the same per-credential budget as the writes, and readings are cached for a short time
(``cache_ttl_ms``) so that several users of one flush or reconcile don't read twice.

Errors are the caller's to classify (:func:`workers.outcomes.classify`); only the budget
is handled here: a short wait is slept in place, a long one raises :class:`FlushDeferred`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from klikit.client import KlikitClient
from klikit.menu_tree import MenuSnapshot
from workers.budget import RateBudget
from workers.changes import Store
from workers.clock import now_ms
from workers.errors import FlushDeferred
from workers.metrics import KLIKIT_READS

#: The longest a read sleeps in place for the rate budget before handing back to the broker.
MAX_INLINE_BUDGET_WAIT_MS = 2_000


@dataclass
class MenuReader:
    """Reads of one business's menu, through its budget, with a short per-reader cache."""

    client: KlikitClient
    budget: RateBudget
    purpose: str = "reconcile"
    cache_ttl_ms: int = 2_000
    sleep: Callable[[float], None] = time.sleep
    _cache: dict[str, tuple[int, MenuSnapshot]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read(self, store: Store | None) -> MenuSnapshot:
        """Store mode for ``store``, business mode for ``None``; raises the client's errors."""
        scope = store.key() if store is not None else "*"
        with self._lock:
            hit = self._cache.get(scope)
            if hit is not None and now_ms() - hit[0] <= self.cache_ttl_ms:
                return hit[1]
        self._take_budget()
        snapshot = self.client.read_menu() if store is None else self.client.read_menu(store.brand_id, store.branch_id)
        KLIKIT_READS.labels(purpose=self.purpose).inc()
        with self._lock:
            self._cache[scope] = (now_ms(), snapshot)
        return snapshot

    def forget(self, store: Store | None = None) -> None:
        """Drop the cached reading of ``store`` (all readings when ``None``)."""
        with self._lock:
            if store is None:
                self._cache.clear()
            else:
                self._cache.pop(store.key(), None)

    def _take_budget(self) -> None:
        wait = self.budget.take()
        while wait:
            if wait > MAX_INLINE_BUDGET_WAIT_MS:
                raise FlushDeferred("menu read waits for the rate budget", delay=wait)
            self.sleep(wait / 1000)
            wait = self.budget.take()
