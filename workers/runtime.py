"""The process-wide things actors use: settings, Redis, credentials, klikit clients.

Built lazily on first use and cached per process, so that importing the actors
module (as producers do, to send nudges) does not open connections or read files.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog

from config.credentials import BusinessCredential, Credentials, CredentialsError
from config.logging import register_secrets
from config.redis import Keys, connect
from config.settings import Settings, get_settings
from klikit.client import KlikitClient
from workers.budget import RateBudget
from workers.changes import Store
from workers.clock import now_ms
from workers.deadletters import DeadLetterStore, FailureLog
from workers.errors import FlushDeferred
from workers.ledger import Ledger
from workers.providers import KnownProviders, ProviderDirectory, fallback_providers
from workers.queue_wait import QueueWait, RecentWait, flag_ttl_ms
from workers.sweep_decision import attention_hold_ms

STORES_CACHE_TTL_S = 600
#: How often a credential lookup looks whether the credentials file changed (a few stats).
CREDENTIALS_CHECK_S = 2.0

log = structlog.get_logger("menusync.runtime")


def _stamp(paths: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime ns, size) of each file; a missing file stamps as -1."""
    out = []
    for path in paths:
        try:
            info = path.stat()
            out.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            out.append((str(path), -1, -1))
    return tuple(out)


#: The longest a provider-list read sleeps in place for the rate budget before giving up for now.
PROVIDERS_MAX_BUDGET_WAIT_MS = 2_000

log = structlog.get_logger("menusync.runtime")


@dataclass
class Runtime:
    settings: Settings
    _clients: dict[int, KlikitClient] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _credentials: Credentials | None = field(default=None, repr=False)
    _pinned: bool = field(default=False, repr=False)
    _stamp: tuple[tuple[str, int, int], ...] = field(default=(), repr=False)
    _checked_at: float = field(default=0.0, repr=False)
    _generation: str | None = field(default=None, repr=False)

    @cached_property
    def redis(self) -> Any:
        return connect(self.settings.redis_url)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.prefix)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.keys)

    @cached_property
    def recent_wait(self) -> RecentWait:
        """The flush queue's wait as this process last read it (``workers.queue_wait``)."""
        return RecentWait()

    def flush_flag_ttl_ms(self) -> int:
        """How long a ``flush:scheduled`` flag set now lives: the lease TTL plus the queue's wait."""
        return flag_ttl_ms(self.settings.lease_ttl_ms, self._recent_wait_ms())

    def attention_hold_ms(self, wait_ms: int | None = None) -> int:
        """How long past its flush flag a newly pending business waits in the sweeper's index
        (``workers.sweep_decision.attention_hold_ms``), for the flush queue's wait ``wait_ms``
        (default: as this process last read it)."""
        s = self.settings
        wait = self._recent_wait_ms() if wait_ms is None else wait_ms
        return attention_hold_ms(
            stale_ms=int(s.sweep_stale_after_s * 1000), flush_window_ms=s.flush_window_ms, wait_ms=wait
        )

    def _recent_wait_ms(self) -> int:
        return QueueWait(self.redis, self.keys).recent_ms(self.recent_wait, now_ms())

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self.redis, self.keys)

    @cached_property
    def failures(self) -> FailureLog:
        return FailureLog(self.redis, self.keys, ttl_s=int(self.settings.retry_max_age_s * 2) + 3600)

    @property
    def credentials(self) -> Credentials:
        """The credentials file's contents, re-read when it (or a secret file it names) changed,
        checked at most every :data:`CREDENTIALS_CHECK_S`, and at once after :meth:`refresh_credentials`."""
        with self._lock:
            if self._credentials is None:
                self._credentials = Credentials.load(self.settings.credentials_file)
                self._stamp = _stamp(self._credentials.sources or (self.settings.credentials_file,))
                self._checked_at = time.monotonic()
                register_secrets(self._credentials.secrets())
            elif not self._pinned and time.monotonic() - self._checked_at >= CREDENTIALS_CHECK_S:
                self._reload_if_changed(force=False)
            return self._credentials

    def refresh_credentials(self) -> None:
        """Look for a changed credentials file now, and re-read it after ``menusync credentials clear``
        (which bumps ``credentials:generation``), whatever the throttle. One GET and a few stats."""
        generation = self.redis.get(self.keys.credentials_generation())
        with self._lock:
            if self._credentials is None or self._pinned:
                return
            self._reload_if_changed(force=generation != self._generation)
            self._generation = generation

    def _reload_if_changed(self, *, force: bool) -> None:
        assert self._credentials is not None
        self._checked_at = time.monotonic()
        stamp = _stamp(self._credentials.sources or (self.settings.credentials_file,))
        if stamp == self._stamp and not force:
            return
        try:
            fresh = Credentials.load(self.settings.credentials_file)
        except CredentialsError as exc:
            log.error("credentials file changed but cannot be read; keeping the previous credentials", error=str(exc))
            self._stamp = stamp
            return
        register_secrets(fresh.secrets())
        changed = [
            b for b in fresh.businesses() if b not in self._credentials or fresh.get(b) != self._credentials.get(b)
        ]
        for business_id in [*changed, *(b for b in self._credentials.businesses() if b not in fresh)]:
            client = self._clients.pop(business_id, None)
            if client is not None:
                client.close()
        self._credentials, self._stamp = fresh, _stamp(fresh.sources or (self.settings.credentials_file,))
        if changed:
            log.info("credentials re-read: new keys in use", businesses=changed)

    def use_credentials(self, credentials: Credentials) -> None:
        """Install credentials directly (tests, the demo); they are never re-read from a file."""
        with self._lock:
            self._credentials = credentials
            self._pinned = True
            register_secrets(credentials.secrets())
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def credential(self, business_id: int) -> BusinessCredential:
        return self.credentials.get(business_id)

    def client(self, business_id: int) -> KlikitClient:
        """The pooled klikit client of a business's credential (one per process)."""
        credential = self.credential(business_id)
        with self._lock:
            client = self._clients.get(business_id)
            if client is None:
                client = KlikitClient.from_settings(self.settings, credential)
                self._clients[business_id] = client
            return client

    def budget(self, business_id: int) -> RateBudget:
        """The shared request budget of a business's credential (its own rate, else the default)."""
        s = self.settings
        rate = self.credential(business_id).rate_per_minute or s.rate_per_minute
        return RateBudget(self.redis, self.keys, business_id, rate, s.rate_burst)

    def stores(self, business_id: int) -> tuple[Store, ...]:
        """Every store of a business: from its credential entry, else klikit's branches (cached)."""
        credential = self.credential(business_id)
        if credential.stores:
            return tuple(Store(brand_id=s.brand_id, branch_id=s.branch_id) for s in credential.stores)
        cache_key = self.keys.business(business_id, "stores")
        cached = self.redis.get(cache_key)
        if cached:
            return tuple(Store.from_key(k) for k in json.loads(cached))
        pairs = self.client(business_id).list_stores()
        stores = tuple(sorted({Store(brand_id=b, branch_id=br) for b, br in pairs}, key=lambda s: s.key()))
        self.redis.set(cache_key, json.dumps([s.key() for s in stores]), ex=STORES_CACHE_TTL_S)
        return stores

    @cached_property
    def provider_directory(self) -> ProviderDirectory:
        return ProviderDirectory(self.redis, self.keys, self._list_providers)

    def _list_providers(self, business_id: int) -> Any:
        """klikit's provider list, read through the credential's budget (a long wait raises)."""
        budget = self.budget(business_id)
        wait = budget.take()
        while wait:
            if wait > PROVIDERS_MAX_BUDGET_WAIT_MS:
                raise FlushDeferred("provider list read waits for the rate budget", delay=wait)
            time.sleep(wait / 1000)
            wait = budget.take()
        return self.client(business_id).list_providers().data

    def providers(self, business_id: int) -> KnownProviders:
        """The providers klikit lists for a business (cached 10 min); raises when klikit can't say."""
        return self.provider_directory.listed(business_id)

    def known_providers(self, business_id: int) -> KnownProviders:
        """The providers intake accepts: klikit's list, else the fallback (``workers.providers``)."""
        directory = self.provider_directory
        hit = directory.cached(business_id)
        if hit is not None:
            return hit
        try:
            configured = self.credential(business_id).provider_ids
        except CredentialsError:
            configured = ()
        if configured and not directory.recently_unreadable(business_id):
            try:
                return directory.listed(business_id)
            except Exception as exc:  # klikit down or answering nonsense: intake must still answer
                directory.mark_unreadable(business_id)
                log.warning(
                    "provider list unreadable: using the configured providers",
                    business_id=business_id,
                    error=type(exc).__name__,
                )
        return fallback_providers(configured)

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(get_settings())
        return _runtime


def reset_runtime(settings: Settings | None = None) -> Runtime:
    """Replace the process runtime (tests: new settings or credentials)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = Runtime(settings or get_settings())
        return _runtime
