"""The status report: what the running system is doing, per business and per queue (``menusync status``).

Per business: changes pending and applied (ledger stats), the age of the oldest pending
change, the last publish and its outcome (``publish:last:B``, or a newer publish dead
letter), the publish due (``publish:B``), dead letters by code, credential health
(``credential:blocked:B``), whether a flush holds the lease, and how long a klikit outage of
the business has lasted (``breaker:B`` ``outage_since``). A page of businesses (by id,
:func:`page_of`) is read in one pipelined round trip, so the report costs the same at 10 or at
10,000 businesses.

Per queue (Dramatiq's Redis broker, namespace ``<prefix>-dramatiq``): messages ready,
in flight (fetched, not yet acked), delayed (retries and debounce timers), the oldest
delayed message (age since first enqueued and how overdue its ETA is) and Dramatiq's own
dead-letter queue. With a RabbitMQ broker the depths come from RabbitMQ itself.

Everything is read-only. :mod:`cli.status` renders the report (or prints it as JSON).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
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


#: Businesses per page of the status report and of the console overview.
STATUS_PAGE_SIZE = 100
#: The largest page a caller may ask for (a page is read in one pipelined round trip).
STATUS_PAGE_MAX = 1_000


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
    """One page of businesses, in id order."""
    businesses_total: int = 0
    """How many businesses there are in all."""
    next_after: int | None = None
    """The ``after`` of the next page; ``None`` on the last."""
    limit: int | None = STATUS_PAGE_SIZE
    """Businesses per page (``None``: every business)."""
    queues: list[QueueStatus] = field(default_factory=list)
    dead_letters_total: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of businesses, in id order: ``ids``, how many there are in all, and the id to pass as
    ``after`` for the next page (``None`` on the last)."""

    ids: list[int]
    total: int
    next_after: int | None


def page_of(ids: Iterable[int], after: int | None, limit: int | None) -> Page:
    """The businesses after ``after`` (every one when ``None``), at most ``limit`` of them (all when
    ``None``). Pure; a cursor rather than an offset, so a business recorded between two pages never
    shifts a page onto one already seen."""
    ordered = sorted(set(ids))
    start = bisect.bisect_right(ordered, after) if after is not None else 0
    chunk = ordered[start:] if limit is None else ordered[start : start + limit]
    more = start + len(chunk) < len(ordered)
    return Page(ids=chunk, total=len(ordered), next_after=chunk[-1] if more and chunk else None)


#: The reads of one business's status, in the order :func:`business_statuses` queues them.
_FIELDS = 10


def business_statuses(rt: Runtime, business_ids: list[int], now: int) -> list[BusinessStatus]:
    """The status of each of ``business_ids``, read in one pipelined round trip (one per node on a
    cluster), from each business's own keys: its counters, pending index, publish state, credential
    block, breaker, lease, last read-back and open dead letters by code. Only a business with open
    dead letters costs one more read (does a publish dead letter postdate the last publish?).

    The page is not one snapshot (its keys span slots on a cluster, so no MULTI/EXEC): it is a
    read-only display, and a write that lands between two of its reads shows at the next refresh;
    nothing is decided from it."""
    r, k = rt.redis, rt.keys
    pipe = r.pipeline(transaction=False)
    for b in business_ids:
        pending = rt.ledger.pending_key(b)
        pipe.hgetall(rt.ledger.stats_key(b))
        pipe.zcard(pending)
        pipe.zrange(pending, 0, 0, withscores=True)
        pipe.hgetall(k.business(b, "publish", "last"))
        pipe.hgetall(k.business(b, "publish"))
        pipe.get(auth_block_key(rt, b))
        pipe.hget(k.business(b, "breaker"), "outage_since")
        pipe.exists(k.business(b, "lease"))
        pipe.hgetall(k.business(b, "reconcile", "last"))
        pipe.hgetall(rt.dead_letters.codes_key(b))
    replies = pipe.execute() if business_ids else []
    out = []
    for i, b in enumerate(business_ids):
        stats, pending, first, last, publish, blocked, outage_since, lease, reconcile, codes = replies[
            i * _FIELDS : (i + 1) * _FIELDS
        ]
        stats = {key: int(v) for key, v in stats.items()}
        dead_letters = rt.dead_letters.open_codes(codes)
        last_at, outcome = _last_publish(rt, b, last, bool(dead_letters))
        due = int(publish["due"]) - now if publish.get("due") else None
        started = int(publish["first"]) if publish.get("first") else None
        out.append(
            BusinessStatus(
                business_id=b,
                pending=int(pending),
                oldest_pending_age_ms=now - int(first[0][1]) if first else None,
                recorded=stats.get("recorded", 0),
                superseded=stats.get("superseded", 0),
                applied=stats.get("applied", 0),
                dead=stats.get("dead", 0),
                last_publish_at_ms=last_at,
                last_publish_outcome=outcome,
                publish_due_in_ms=due,
                publish_waiting_since_ms=now - started if started else None,
                dead_letters=dead_letters,
                credential=f"blocked: {blocked}" if blocked else "ok",
                flushing=bool(lease),
                last_reconcile=dict(reconcile),
                klikit_outage_ms=now - int(outage_since) if outage_since else None,
            )
        )
    return out


def business_status(rt: Runtime, business_id: int, now: int) -> BusinessStatus:
    """One business's status (see :func:`business_statuses`)."""
    return business_statuses(rt, [business_id], now)[0]


def _last_publish(
    rt: Runtime, business_id: int, last: dict[str, str], has_dead_letters: bool
) -> tuple[int | None, str]:
    """When the business last published and how it went: ``publish:last``, unless a publish dead
    letter is newer than it says."""
    last_at = int(last["at_ms"]) if last.get("at_ms") else None
    recorded_outcome = last.get("outcome", "published")
    if not last_at:
        outcome = "never"
    elif recorded_outcome == "published":
        outcome = f"ok (generation {last.get('generation', '?')})"
    else:
        outcome = f"dead-lettered: {recorded_outcome}"
    if not has_dead_letters:
        return last_at, outcome
    for record in rt.dead_letters.list(business_id, limit=50):
        if record.operation == PUBLISH_OPERATION and (last_at is None or record.last_failure_ms > last_at):
            return record.last_failure_ms, f"dead-lettered: {record.error_code}"
    return last_at, outcome


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


def collect(
    rt: Runtime | None = None,
    business_id: int | None = None,
    *,
    after: int | None = None,
    limit: int | None = STATUS_PAGE_SIZE,
) -> StatusReport:
    """The status report (read-only): one business, or one page of them (``after``, ``limit``:
    see :func:`page_of`; ``limit=None`` reads every business)."""
    rt = rt or runtime()
    now = now_ms()
    amqp = rt.settings.effective_broker_url.startswith(("amqp://", "amqps://"))
    report = StatusReport(
        at_ms=now,
        prefix=rt.settings.prefix,
        broker="rabbitmq" if amqp else "redis",
        redis=mask_url(rt.settings.redis_url) or "",
    )
    page = page_of([business_id] if business_id is not None else rt.ledger.businesses(), after, limit)
    report.businesses = business_statuses(rt, page.ids, now)
    report.businesses_total, report.next_after, report.limit = page.total, page.next_after, limit
    report.queues = [
        rabbitmq_queue_status(q) if amqp else redis_queue_status(rt, q, now) for q in queue_names(rt.settings.prefix)
    ]
    report.dead_letters_total = rt.dead_letters.counts_by_code(business_id)
    return report
