"""A running pipeline for end-to-end tests: the sandbox, a real Redis, real Dramatiq workers.

``Pipeline`` installs runtime settings pointing at the sandbox, the sandbox's
credentials, and runs an in-process ``dramatiq.Worker`` on the run's Redis broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq

from config.credentials import Credentials
from config.settings import Settings
from devstack.sandbox.testing import SandboxAdmin
from devstack.stack import WORKER_ARGV, ServiceProcess, wait_for
from workers.changes import Change, Store, Target
from workers.runtime import Runtime, reset_runtime
from workers.submit import SubmitResult, submit_changes

BUSINESS = 398
STORES = (
    Store(brand_id=5297, branch_id=1293),
    Store(brand_id=5297, branch_id=5913),
    Store(brand_id=1615, branch_id=1294),
)


def credentials_for(sandbox: SandboxAdmin, businesses: Iterable[int] = (BUSINESS,)) -> Credentials:
    table: dict[str, Any] = {}
    for b in businesses:
        partner_key, secret = sandbox.credentials(b)
        entry: dict[str, Any] = {"partner_key": partner_key, "secret_key": secret, "provider_ids": [1, 6]}
        if b == BUSINESS:
            entry["stores"] = [{"brand_id": s.brand_id, "branch_id": s.branch_id} for s in STORES]
        table[str(b)] = entry
    return Credentials.from_mapping({"business": table})


def item_change(
    entity_id: int, enabled: bool, at_ms: int, store: Store | None = None, change_id: str | None = None
) -> Change:
    return Change(
        id=change_id or f"t-{entity_id}-{at_ms}",
        target=Target(business_id=BUSINESS, store=store, level="item", entity_id=entity_id, field="enabled"),
        value=enabled,
        occurred_at_ms=at_ms,
    )


class Pipeline:
    def __init__(self, sandbox: SandboxAdmin, broker: dramatiq.Broker, **overrides: Any) -> None:
        self.sandbox = sandbox
        self.broker = broker
        self.settings = Settings(klikit_base_url=sandbox.url, **overrides)  # type: ignore[call-arg]
        self.rt: Runtime = reset_runtime(self.settings)
        self.rt.use_credentials(credentials_for(sandbox))
        self.worker: dramatiq.Worker | None = None

    def start(self, threads: int = 4) -> Pipeline:
        self.worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=50)
        self.worker.start()
        return self

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.worker = None
        self.rt.close()

    def submit(self, changes: list[Change], **kw: Any) -> SubmitResult:
        return submit_changes(changes, **kw)

    # -- observation -------------------------------------------------------
    def settled(self, business_id: int = BUSINESS) -> bool:
        """Nothing pending in the ledger, no flush scheduled, no publish pending."""
        r, k = self.rt.redis, self.rt.keys
        return (
            self.rt.ledger.pending_count(business_id) == 0
            and not r.exists(k.business(business_id, "flush", "scheduled"))
            and not r.exists(k.business(business_id, "publish"))
            and not r.exists(k.business(business_id, "lease"))
        )

    def wait_settled(self, business_id: int = BUSINESS, timeout: float = 30.0) -> None:
        wait_for(lambda: self.settled(business_id), timeout=timeout, what=f"business {business_id} to settle")

    def writes(self, business_id: int = BUSINESS) -> list[dict[str, Any]]:
        return [
            c
            for c in self.sandbox.calls(business_id=business_id)
            if c["method"] in ("PATCH", "POST") and not c["path"].endswith("/publish")
        ]

    def publishes(self, business_id: int = BUSINESS, ok_only: bool = True) -> list[dict[str, Any]]:
        return [
            c
            for c in self.sandbox.calls(business_id=business_id)
            if c["path"].endswith("/publish") and (not ok_only or (c["status"] or 0) < 300)
        ]

    def published_item_enabled(self, store: Store, item_id: int, business_id: int = BUSINESS) -> Any:
        state = self.sandbox.state(business_id)
        return state["effective_published"][store.key()]["item"][str(item_id)]["enabled"]


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def start_worker(workers: list[ServiceProcess], env: dict[str, str], tmp_path: Path) -> ServiceProcess:
    """Start one ``dramatiq workers.actors`` subprocess (the Procfile's command), logging to ``tmp_path``."""
    proc = ServiceProcess(WORKER_ARGV, env, log_path=tmp_path / f"worker-{len(workers)}.log").start()
    workers.append(proc)
    return proc
