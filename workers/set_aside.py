"""Setting targets aside: the one path from "klikit will never take this" to a dead letter.

:func:`set_aside` records the dead letter, marks its targets dead in the ledger (a newer change
or a replay brings them back), tells the change history and counts it. Flush (a refused call,
targets no call can make true, a map that cannot be read) and the read-back (drift that keeps
coming back) all go through it.
"""

from __future__ import annotations

import structlog

from workers import history
from workers.deadletters import DeadLetter
from workers.metrics import DEAD_LETTERS
from workers.runtime import Runtime

log = structlog.get_logger("menusync.dead_letters")


def set_aside(
    rt: Runtime, record: DeadLetter, *, source: str = "flush", event: str = "targets dead-lettered"
) -> DeadLetter:
    """Store ``record`` and set its targets aside; answers the stored record."""
    if record.business_id is None:
        raise ValueError("targets are set aside per business: the record has no business_id")
    stored = rt.dead_letters.add(record)
    rt.ledger.mark_dead(record.business_id, stored.targets, stored.id)
    history.on_dead(rt, record.business_id, stored.targets, stored.error_code, stored.id, source=source)
    if stored.idempotency_key:
        rt.failures.clear(stored.idempotency_key)
    DEAD_LETTERS.labels(code=stored.error_code).inc()
    log.error(
        event,
        business_id=record.business_id,
        dead_letter_id=stored.id,
        code=stored.error_code,
        status=stored.http_status,
        request_id=stored.request_id,
        idempotency_key=stored.idempotency_key,
        targets=len(stored.targets),
    )
    return stored
