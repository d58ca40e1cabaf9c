"""The status report: what the running system is doing, per business and per queue (``menusync status``).

Per business: changes pending and applied (ledger stats), the age of the oldest pending
change, the last publish and its outcome (``publish:last:B``, or a newer publish dead
letter), the publish due (``publish:B``), dead letters by code, credential health
(``credential:blocked:B``), whether a flush holds the lease, and how long a klikit outage of
the business has lasted (``breaker:B`` ``outage_since``).

Per queue (Dramatiq's Redis broker, namespace ``<prefix>-dramatiq``): messages ready,
in flight (fetched, not yet acked), delayed (retries and debounce timers), the oldest
delayed message (age since first enqueued and how overdue its ETA is) and Dramatiq's own
dead-letter queue. With a RabbitMQ broker the depths come from RabbitMQ itself.

Everything is read-only. :mod:`cli.status` renders the report (or prints it as JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from config.settings import mask_url
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.publish import PUBLISH_OPERATION
from workers.queues import queue_names
from workers.runtime import Runtime, runtime

#: At most this many delayed messages are decoded per queue to find the oldest.
DELAYED_SCAN_LIMIT = 5_000


@dataclass
class BusinessStatus:
    business_id: int
    pending: int
    oldest_pending_age_ms: int | None
    recorded: int
    superseded: int
    applied: int
    dead: int
    last_publish_at_ms: int | None
    last_publish_outcome: str
    publish_due_in_ms: int | None
    publish_waiting_since_ms: int | None
    dead_letters: dict[str, int]
    credential: str
    flushing: bool
    last_reconcile: dict[str, str] = field(default_factory=dict)
    """The last read-back's summary (``reconcile:last:B``): when, stores read, drift found and repaired."""
    klikit_outage_ms: int | None = None
    """How long klikit has been failing this business's writes (its breaker open); ``None``: no outage."""


@dataclass
class QueueStatus:
    queue: str
    ready: int | None
    in_flight: int | None
    delayed: int | None
    oldest_delayed_age_ms: int | None = None
    oldest_delayed_overdue_ms: int | None = None
    dead: int | None = None


@dataclass
class StatusReport:
    at_ms: int
    prefix: str
    broker: str
    redis: str = ""
    """The Redis read, its password masked."""
    businesses: list[BusinessStatus] = field(default_factory=list)
    queues: list[QueueStatus] = field(default_factory=list)
    dead_letters_total: dict[str, int] = field(default_factory=dict)


def business_status(rt: Runtime, business_id: int, now: int) -> BusinessStatus:
    r, k = rt.redis, rt.keys
    stats = rt.ledger.stats(business_id)
    oldest = rt.ledger.oldest_pending_ms(business_id)
    last = r.hgetall(k.business(business_id, "publish", "last"))
    last_at = int(last["at_ms"]) if last.get("at_ms") else None
    recorded_outcome = last.get("outcome", "published")
    if not last_at:
        outcome = "never"
    elif recorded_outcome == "published":
        outcome = f"ok (generation {last.get('generation', '?')})"
    else:
        outcome = f"dead-lettered: {recorded_outcome}"
    for record in rt.dead_letters.list(business_id, limit=50):  # a dead letter newer than the hash says
        if record.operation == PUBLISH_OPERATION and (last_at is None or record.last_failure_ms > last_at):
            outcome = f"dead-lettered: {record.error_code}"
            last_at = record.last_failure_ms
            break
    publish = r.hgetall(k.business(business_id, "publish"))
    due = int(publish["due"]) - now if publish.get("due") else None
    first = int(publish["first"]) if publish.get("first") else None
    blocked = r.get(auth_block_key(rt, business_id))
    outage_since = r.hget(k.business(business_id, "breaker"), "outage_since")
    return BusinessStatus(
        business_id=business_id,
        pending=rt.ledger.pending_count(business_id),
        oldest_pending_age_ms=now - oldest if oldest is not None else None,
        recorded=stats.get("recorded", 0),
        superseded=stats.get("superseded", 0),
        applied=stats.get("applied", 0),
        dead=stats.get("dead", 0),
        last_publish_at_ms=last_at,
        last_publish_outcome=outcome,
        publish_due_in_ms=due,
        publish_waiting_since_ms=now - first if first else None,
        dead_letters=rt.dead_letters.counts_by_code(business_id),
        credential=f"blocked: {blocked}" if blocked else "ok",
        flushing=bool(r.exists(k.business(business_id, "lease"))),
        last_reconcile=dict(r.hgetall(k.business(business_id, "reconcile", "last"))),
        klikit_outage_ms=now - int(outage_since) if outage_since else None,
    )


def _oldest_delayed(r: Any, msgs_key: str, now: int) -> tuple[int | None, int | None]:
    """(age since first enqueued, ms past its ETA) of the oldest delayed message in a ``.DQ.msgs`` hash."""
    oldest_ts: int | None = None
    earliest_eta: int | None = None
    for n, (_, raw) in enumerate(r.hscan_iter(msgs_key, count=500)):
        if n >= DELAYED_SCAN_LIMIT:
            break
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            continue
        ts = message.get("message_timestamp")
        eta = (message.get("options") or {}).get("eta")
        if isinstance(ts, int):
            oldest_ts = ts if oldest_ts is None else min(oldest_ts, ts)
        if isinstance(eta, int):
            earliest_eta = eta if earliest_eta is None else min(earliest_eta, eta)
    age = now - oldest_ts if oldest_ts is not None else None
    overdue = max(0, now - earliest_eta) if earliest_eta is not None else None
    return age, overdue


def redis_queue_status(rt: Runtime, queue: str, now: int) -> QueueStatus:
    r = rt.redis
    ns = f"{rt.settings.prefix}-dramatiq"
    base, delayed = f"{ns}:{queue}", f"{ns}:{queue}.DQ"
    pipe = r.pipeline(transaction=False)
    pipe.llen(base)
    pipe.hlen(f"{base}.msgs")
    pipe.hlen(f"{delayed}.msgs")
    pipe.zcard(f"{base}.XQ")
    ready, stored, delayed_count, dead = pipe.execute()
    age, overdue = _oldest_delayed(r, f"{delayed}.msgs", now) if delayed_count else (None, None)
    return QueueStatus(
        queue=queue,
        ready=int(ready),
        in_flight=max(0, int(stored) - int(ready)),
        delayed=int(delayed_count),
        oldest_delayed_age_ms=age,
        oldest_delayed_overdue_ms=overdue,
        dead=int(dead),
    )


def rabbitmq_queue_status(queue: str) -> QueueStatus:
    from workers.actors import broker

    try:
        ready, delayed, dead = broker.get_queue_message_counts(queue)  # type: ignore[attr-defined]
    except Exception:
        return QueueStatus(queue=queue, ready=None, in_flight=None, delayed=None)
    return QueueStatus(queue=queue, ready=ready, in_flight=None, delayed=delayed, dead=dead)


def collect(rt: Runtime | None = None, business_id: int | None = None) -> StatusReport:
    """The status report (read-only)."""
    rt = rt or runtime()
    now = now_ms()
    amqp = rt.settings.effective_broker_url.startswith(("amqp://", "amqps://"))
    report = StatusReport(
        at_ms=now,
        prefix=rt.settings.prefix,
        broker="rabbitmq" if amqp else "redis",
        redis=mask_url(rt.settings.redis_url) or "",
    )
    ids = [business_id] if business_id is not None else rt.ledger.businesses()
    report.businesses = [business_status(rt, b, now) for b in ids]
    report.queues = [
        rabbitmq_queue_status(q) if amqp else redis_queue_status(rt, q, now) for q in queue_names(rt.settings.prefix)
    ]
    report.dead_letters_total = rt.dead_letters.counts_by_code(business_id)
    return report
