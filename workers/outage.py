"""After a klikit outage: a business's transient dead letters go back to pending by themselves.

A write dead-lettered for a transient failure (502s, timeouts... for longer than
``retry_max_age_s``, from an older run or before the outage rule existed) is not something
klikit refused: it is something klikit could not take *then*. Once that business's klikit
calls succeed again, :func:`repend_transient_dead_letters` puts such records' targets back in
pending under their old Idempotency-Key (a target a newer change has moved on is left alone,
as with ``menusync dlq replay``), re-schedules a dead-lettered publish, and marks the records
replayed. Permanent dead letters (4xx) are never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from klikit.errors import DownstreamUnavailable, InternalError, KlikitConnectionError, KlikitTimeout, NotEnvelopeError
from workers.clock import now_ms
from workers.deadletters import DeadLetter
from workers.publish_state import ALL_STORES, PublishTracker
from workers.runtime import Runtime

log = structlog.get_logger("menusync.outage")

#: Dead-letter codes of transient failures (klikit could not take the write then).
TRANSIENT_CODES = frozenset(
    cls.default_code
    for cls in (DownstreamUnavailable, InternalError, KlikitTimeout, KlikitConnectionError, NotEnvelopeError)
)
#: How long a record re-pended this way stays readable with ``menusync dlq show``.
REPLAYED_KEEP_S = 7 * 24 * 3600
#: Records looked at per business in one go.
SCAN_LIMIT = 1_000
PUBLISH_OPERATION = "publish_menu"


def is_transient(record: DeadLetter) -> bool:
    return record.kind == "call" and record.error_code in TRANSIENT_CODES and not record.replayed_at_ms


def repend_transient_dead_letters(rt: Runtime, business_id: int, send_publish: Callable[[int, int], None]) -> int:
    """Re-pend the business's open transient dead letters; answers how many records were replayed."""
    counts = rt.dead_letters.counts_by_code(business_id)
    if not any(code in TRANSIENT_CODES for code in counts):
        return 0  # the usual case: one HGETALL
    replayed = targets_back = 0
    for record in rt.dead_letters.list(business_id, limit=SCAN_LIMIT):
        if not is_transient(record):
            continue
        if record.targets:
            targets_back += rt.ledger.unblock(business_id, [(t, v) for t, v in record.targets], new_key=False)
        elif record.operation == PUBLISH_OPERATION:
            body = record.body if isinstance(record.body, dict) else {}
            stores = [f"{s['brandID']}:{s['branchID']}" for s in body.get("stores", []) if isinstance(s, dict)]
            tracker = PublishTracker(rt.redis, rt.keys, business_id)
            if tracker.touch(stores or [ALL_STORES], rt.settings.publish_quiet_ms):
                send_publish(business_id, rt.settings.publish_quiet_ms)
        rt.dead_letters.mark_replayed(record, now_ms(), REPLAYED_KEEP_S)
        replayed += 1
    if replayed:
        log.warning(
            "klikit answers again: transient dead letters re-pended",
            business_id=business_id,
            dead_letters=replayed,
            targets=targets_back,
        )
    return replayed
