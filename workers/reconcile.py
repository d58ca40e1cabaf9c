"""Read-back reconciliation: menusync checks what klikit actually shows (design.md section 6).

klikit sends no result webhook, but store-mode ``getMenu`` reads the snapshot a publish
built, i.e. what the channels were sent. :func:`reconcile_business_now` reads it for some
stores of a business (after each publish: the stores published; periodically: all of
them), compares it with the ledger (:func:`workers.drift.find_drift`) and repairs drift:
each drifted target goes back into pending under a new idempotency key, so the flush
writes it again and the debounced publish ships it. The re-pend is one Lua script that
acts only while the reading still describes the ledger (no write since the publish).

A target that drifts again after each of ``reconcile_max_repairs`` repairs, each within
``reconcile_repair_window_s`` of the one before, is
someone fighting menusync from klikit's side: it is dead-lettered (``drift_persistent``)
with the values seen, and left alone until it is replayed or a newer change arrives.
Reads come out of the credential's rate budget. A 429 or a transient failure hands the
read-back to a Dramatiq retry (:class:`FlushDeferred`); a store klikit does not know is
reported, not crashed on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from klikit.errors import KlikitError
from klikit.menu_tree import MenuShapeError, MenuSnapshot
from workers import history
from workers.changes import Store
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.deadletters import build_dead_letter
from workers.drift import DRIFT, DriftReport, Finding, find_drift
from workers.errors import FlushDeferred, UnreadablePayload
from workers.metrics import DRIFT_TARGETS, LAST_RECONCILE
from workers.outcomes import Action, Failures, RetryPolicy, decide_outcome
from workers.readback import MenuReader
from workers.runtime import Runtime
from workers.scripts import script
from workers.set_aside import set_aside

log = structlog.get_logger("menusync.reconcile")

DRIFT_PERSISTENT = "drift_persistent"


@dataclass
class ReconcileOutcome:
    """What one read-back found and did; also kept in ``reconcile:last:B`` for status."""

    business_id: int
    reason: str
    at_ms: int = field(default_factory=now_ms)
    report: DriftReport = field(default_factory=DriftReport)
    unknown_stores: list[str] = field(default_factory=list)
    unreadable_stores: dict[str, str] = field(default_factory=dict)
    busy: bool = False
    """A write landed since the publish: nothing was repaired (the next publish's read-back looks again)."""
    repended: list[str] = field(default_factory=list)
    persistent: list[str] = field(default_factory=list)
    skipped: str = ""

    def summary(self) -> dict[str, object]:
        findings = self.report.findings
        return {
            "at_ms": self.at_ms,
            "reason": self.reason,
            "stores_read": len(self.report.stores_read),
            "matched": len(self.report.matched),
            "drift": sum(f.kind == DRIFT for f in findings),
            "store_override": sum(f.kind == "store_override" for f in findings),
            "absent": sum(f.kind == "absent" for f in findings),
            "repaired": len(self.repended),
            "persistent": len(self.persistent),
            "unknown_stores": ",".join(self.unknown_stores),
            "busy": int(self.busy),
            "skipped": self.skipped,
        }


def read_store_menus(
    rt: Runtime, business_id: int, stores: Sequence[Store], outcome: ReconcileOutcome, *, attempt: int = 0
) -> dict[str, MenuSnapshot]:
    """Store-mode readings of ``stores``; unknown or unreadable stores are noted in ``outcome``.

    Raises :class:`FlushDeferred` on a 429 or a transient failure (the whole read-back is retried).
    """
    budget = rt.budget(business_id)
    reader = MenuReader(rt.client(business_id), budget, purpose=outcome.reason)
    menus: dict[str, MenuSnapshot] = {}
    for store in stores:
        try:
            menus[store.key()] = reader.read(store)
        except MenuShapeError as exc:
            outcome.unreadable_stores[store.key()] = str(exc)
        except KlikitError as error:
            # The whole read-back is retried by its message, with no age limit of its own.
            policy = RetryPolicy.from_settings(rt.settings, max_age=False)
            step = decide_outcome(error, policy, Failures(attempt + 1, now_ms(), now_ms()), random.random())
            if step.action is Action.RATE_LIMITED:
                budget.penalize(step.delay_ms)
                raise FlushDeferred(f"read-back of {business_id} rate limited", delay=step.delay_ms) from None
            if step.action is Action.RETRY:
                raise FlushDeferred(f"read-back of {business_id} failed transiently", delay=step.delay_ms) from None
            if error.status == 404:
                outcome.unknown_stores.append(store.key())
            else:
                outcome.unreadable_stores[store.key()] = error.code
    return menus


def reconcile_business_now(
    rt: Runtime,
    business_id: int,
    store_keys: Sequence[str] | None,
    *,
    reason: str,
    send_flush: Callable[[int], None],
    attempt: int = 0,
    send_again: Callable[[int, list[str], str, int], None] | None = None,
) -> ReconcileOutcome:
    """Read back ``store_keys`` (``None``: every store) of a business and repair what drifted."""
    outcome = ReconcileOutcome(business_id, reason)
    if rt.redis.get(auth_block_key(rt, business_id)):
        outcome.skipped = "credential_blocked"
        return outcome
    stores = [Store.from_key(k) for k in store_keys] if store_keys else list(rt.stores(business_id))
    carry = [
        rt.keys.publish_state(business_id),
        rt.keys.publish_stores(business_id),
        rt.keys.publish_generation(business_id),
    ]
    generation = int(script(rt.redis, "publish_carry")(keys=carry, args=[s.key() for s in stores]))
    if generation < 0:
        # A write landed since the publish: the reading would be discarded. The next publish covers these stores.
        outcome.busy = True
        outcome.skipped = "publish_pending"
        _record(rt, outcome)
        return outcome
    menus = read_store_menus(rt, business_id, stores, outcome, attempt=attempt)
    outcome.report = find_drift(rt.ledger.view(business_id, scopes={*menus, "*"}), menus)
    _repair(rt, business_id, outcome, send_flush, generation, send_again)
    _record(rt, outcome)
    return outcome


#: How many targets a read-back's log line names (the change history and the metric count them all).
LOG_SAMPLE = 5


def findings_by_kind(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    """Findings grouped by kind, each group in target order."""
    out: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: f.target):
        out.setdefault(finding.kind, []).append(finding)
    return out


def finding_line(finding: Finding) -> dict[str, Any]:
    """What a log line says of one finding: the target, what menusync wants, what the stores show."""
    return {"target": finding.target, "desired": finding.desired, "published": finding.published}


def _repair(
    rt: Runtime,
    business_id: int,
    outcome: ReconcileOutcome,
    send_flush: Callable[[int], None],
    generation: int | None = None,
    send_again: Callable[[int, list[str], str, int], None] | None = None,
) -> None:
    s = rt.settings
    drifted = outcome.report.of_kind(DRIFT)
    repair = rt.ledger.repend_drift(
        business_id,
        [(f.target, f.version) for f in drifted],
        max_repairs=s.reconcile_max_repairs,
        window_ms=int(s.reconcile_repair_window_s * 1000),
        flag_ttl_ms=s.lease_ttl_ms,
        publish_state_key=rt.keys.publish_state(business_id),
        publish_stores_key=rt.keys.publish_stores(business_id),
        stores_read=outcome.report.stores_read,
        write_generation=generation,
    )
    if repair.stale:
        # The reading may predate a write published meanwhile: read these stores again shortly.
        outcome.busy = True
        outcome.skipped = "stale_reading"
        if send_again is not None and outcome.report.stores_read:
            send_again(business_id, list(outcome.report.stores_read), outcome.reason, s.reconcile_delay_ms)
        return
    if repair.busy:
        outcome.busy = True
        log.info(
            "read-back left alone: writes landed since the publish; the next publish reads these stores again",
            business_id=business_id,
            stores=list(outcome.report.stores_read),
        )
        return
    outcome.repended, outcome.persistent = list(repair.repended), list(repair.persistent)
    history.append_outcomes(
        rt.redis,
        rt.keys,
        business_id,
        [(k, "") for k in outcome.repended],
        "drift_repaired",
        max_entries=s.history_max_per_business,
        source="reconcile",
        detail=outcome.reason,
    )
    by_target = {f.target: f for f in outcome.report.findings}
    for finding in outcome.report.findings:
        DRIFT_TARGETS.labels(business=str(business_id), level=finding.level, kind=finding.kind).inc()
    # One line per kind and read-back, not per target: a store never published shows every one of
    # its targets absent, and hundreds of lines per read would bury the line that matters.
    for kind, findings in findings_by_kind([f for f in outcome.report.findings if f.kind != DRIFT]).items():
        log.warning(
            f"read-back: {kind.replace('_', ' ')}",
            business_id=business_id,
            count=len(findings),
            stores=sorted({store for f in findings for store in f.published}),
            sample=[finding_line(f) for f in findings[:LOG_SAMPLE]],
        )
    if outcome.repended:
        repaired = [by_target[key] for key in outcome.repended]
        log.warning(
            "drift repaired: targets written again",
            business_id=business_id,
            count=len(repaired),
            sample=[finding_line(f) for f in repaired[:LOG_SAMPLE]],
            reason=outcome.reason,
        )
    if outcome.persistent:
        _dead_letter_persistent(rt, business_id, [by_target[k] for k in outcome.persistent])
    if repair.send_flush:
        send_flush(business_id)


def _dead_letter_persistent(rt: Runtime, business_id: int, findings: Sequence[Finding]) -> None:
    seen = {f.target: {"desired": f.desired, "published": f.published} for f in findings}
    record = build_dead_letter(
        business_id=business_id,
        targets=[(f.target, f.version) for f in findings],
        operation="reconcile",
        body=seen,
        code=DRIFT_PERSISTENT,
        attempts=rt.settings.reconcile_max_repairs + 1,
        reason=(
            f"klikit showed another value right after each of {rt.settings.reconcile_max_repairs} repairs: "
            "something in klikit's own tools is changing it; values seen: " + json.dumps(seen, sort_keys=True)
        ),
    )
    set_aside(rt, record, source="reconcile", event="drift persists after repairs: dead-lettered")


def _record(rt: Runtime, outcome: ReconcileOutcome) -> None:
    rt.redis.hset(rt.keys.reconcile_last(outcome.business_id), mapping=outcome.summary())
    LAST_RECONCILE.labels(business=str(outcome.business_id)).set(outcome.at_ms / 1000)
    if outcome.unknown_stores:
        log.warning(
            "read-back: klikit does not know these stores",
            business_id=outcome.business_id,
            stores=outcome.unknown_stores,
        )


def read_store_keys(value: object) -> list[str] | None:
    """A message's store list: ``None`` (every store) or ``"brand:branch"`` keys."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 10_000:
        raise UnreadablePayload("store keys must be a list of 'brand:branch' strings")
    keys = []
    for item in value:
        try:
            keys.append(Store.from_key(str(item)).key())
        except (ValueError, TypeError):
            raise UnreadablePayload(f"store key {str(item)[:40]!r} is not 'brand:branch'") from None
    return keys


def last_reconcile(rt: Runtime, business_id: int) -> dict[str, str]:
    """The summary the last read-back of a business left (empty if none yet)."""
    return dict(rt.redis.hgetall(rt.keys.reconcile_last(business_id)))


def outcome_json(outcome: ReconcileOutcome) -> dict[str, object]:
    data = outcome.summary()
    data["findings"] = [asdict(f) for f in outcome.report.findings]
    return data
