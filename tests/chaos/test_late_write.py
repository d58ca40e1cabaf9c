"""A write that hangs past the client's timeout and lands late must not undo a newer one (I2).

klikit (and the sandbox's ``hang`` fault) may finish a request after the client gave up on it. If
the flush then writes a newer value for the same target and the old request lands afterwards,
klikit ends on the older value while the ledger believes the newer one is applied; nothing ever
writes it again. The chaos run meets this now and then (2 % hangs): one target out of ~4,000
published with its previous value. This test builds the interleaving on purpose:

Fixed by repeating an ambiguous write's targets under a new key once it can no longer land late
(``ambiguous_write_settle_ms``; the tests' 2.5 s covers the 2.5 s hang).

1. change A (enable) is flushed; its write hangs for 2.5 s in klikit, the client times out at 0.5 s;
2. change B (disable, newer) is recorded meanwhile; the retried flush writes B at once: applied;
3. A's request lands at 2.5 s and applies.

Expected at the end: klikit holds B (disabled), or menusync writes B again after A landed.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq

from config.credentials import Credentials
from config.settings import Settings
from devstack.sandbox.testing import running_sandbox
from workers.changes import Change, Store, Target
from workers.runtime import reset_runtime
from workers.submit import submit_changes

BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)
ITEM = 150


def _change(enabled: bool, at_ms: int) -> Change:
    return Change(
        id=f"late-{at_ms}",
        target=Target(business_id=BUSINESS, store=STORE, level="item", entity_id=ITEM, field="enabled"),
        value=enabled,
        occurred_at_ms=at_ms,
    )


def _holds(sandbox: Any) -> Any:
    """What klikit holds now for the item at the store (override, else the business value)."""
    state = sandbox.state(BUSINESS)
    override = state["stores"][STORE.key()]["overrides"]["item"].get(str(ITEM), {})
    return override.get("enabled", state["business"]["item"][str(ITEM)]["enabled"])


def test_a_late_landing_write_does_not_leave_klikit_on_an_older_value(r: Any) -> None:
    import workers.actors

    broker = workers.actors.broker
    broker.flush_all()
    with running_sandbox() as sandbox:
        partner_key, secret = sandbox.credentials(BUSINESS)
        rt = reset_runtime(
            Settings(klikit_base_url=sandbox.url, klikit_read_timeout_s=0.5, klikit_incall_attempts=1)  # type: ignore[call-arg]
        )
        rt.use_credentials(
            Credentials.from_mapping(
                {
                    "business": {
                        str(BUSINESS): {
                            "partner_key": partner_key,
                            "secret_key": secret,
                            "provider_ids": [1, 6],
                            "stores": [{"brand_id": STORE.brand_id, "branch_id": STORE.branch_id}],
                        }
                    }
                }
            )
        )
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
        worker.start()
        try:
            now = int(time.time() * 1000) - 60_000
            sandbox.set_faults(hang_rate=1.0, hang_s=2.5, writes_only=True)
            submit_changes([_change(True, now)])
            time.sleep(0.3)  # A's write is in klikit, hanging
            sandbox.clear_faults()
            submit_changes([_change(False, now + 1)])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                landed = any(c.get("fault") == "hang" for c in sandbox.calls(business_id=BUSINESS))
                settled = rt.ledger.pending_count(BUSINESS) == 0 and not rt.redis.exists(
                    rt.keys.business(BUSINESS, "publish")
                )
                if landed and settled:
                    break
                time.sleep(0.1)
            time.sleep(1.0)  # room for any corrective write
            calls = [
                (round(c["ts"], 2), c["status"], c["fault"], c["applied"], (c["body"] or {}).get("isEnabled"))
                for c in sandbox.calls(business_id=BUSINESS)
                if c["method"] == "PATCH"
            ]
            assert _holds(sandbox) is False, (
                f"klikit holds the older value; writes (ts, status, fault, applied, value): {calls}"
            )
        finally:
            worker.stop(timeout=10_000)
            rt.close()
            broker.flush_all()
            reset_runtime()
