"""The Dramatiq actors. Thin: they read their payload and call the flush or publish logic.

Importing this module sets the global broker from the environment (workers.broker),
so ``dramatiq workers.actors`` runs the workers.
"""

from __future__ import annotations

import dramatiq
import structlog

from config.settings import get_settings
from workers.broker import build_broker
from workers.clock import now_ms
from workers.errors import FlushDeferred, UnreadablePayload
from workers.fairness import Lane
from workers.flush import flush_business_now, read_business_id, send_scheduled_flush
from workers.publish import publish_business_now
from workers.queues import queue_name
from workers.reconcile import read_store_keys, reconcile_business_now
from workers.runtime import runtime

_settings = get_settings()
broker = build_broker(_settings)
dramatiq.set_broker(broker)

log = structlog.get_logger("menusync.actors")

#: Unexpected errors (Redis down, a bug) get this many Dramatiq retries; deferrals are bounded elsewhere.
MAX_UNEXPECTED_RETRIES = 20


def retry_when(retries: int, exception: BaseException) -> bool:
    """Deferrals always retry (their count is bounded by each write's total age); other errors up to a cap."""
    if isinstance(exception, FlushDeferred):
        return True
    if isinstance(exception, UnreadablePayload):
        return False
    return retries < MAX_UNEXPECTED_RETRIES


#: Dramatiq runs the lowest number first among the messages a worker holds: fresh flushes go first.
FRESH_PRIORITY = 0
BACKLOG_PRIORITY = 10
#: Read-backs go last: they check what was written and published, and under a saturated pipeline a
#: read-back ahead of a flush only delays the write it would check (at 10,000 businesses they were
#: half the workers' CPU). A read-back waits at most as long as the flushes keep coming.
READ_BACK_PRIORITY = 20


@dramatiq.actor(
    queue_name=queue_name(_settings.prefix, "flush"),
    priority=FRESH_PRIORITY,
    retry_when=retry_when,
    throws=(UnreadablePayload,),
    max_age=None,
)
def flush_business(business_id: int) -> None:
    """Make every pending target of ``business_id`` true in klikit (one business at a time).

    The fresh lane: every nudge lands here. A large round, or a flush that has run its slice,
    continues on :func:`flush_business_backlog` (workers/fairness.py).
    """
    flush_business_now(runtime(), read_business_id(business_id), send_publish, send_flush_later, send_flush_backlog)


@dramatiq.actor(
    queue_name=queue_name(_settings.prefix, "flush-backlog"),
    priority=BACKLOG_PRIORITY,
    retry_when=retry_when,
    throws=(UnreadablePayload,),
    max_age=None,
)
def flush_business_backlog(business_id: int) -> None:
    """The backlog lane: one slice of a large flush, re-queued at the back until nothing is pending."""
    flush_business_now(
        runtime(), read_business_id(business_id), send_publish, send_flush_later, send_flush_backlog, Lane.BACKLOG
    )


def send_flush_backlog(business_id: int) -> None:
    flush_business_backlog.send(business_id)


@dramatiq.actor(
    queue_name=queue_name(_settings.prefix, "publish"), retry_when=retry_when, throws=(UnreadablePayload,), max_age=None
)
def publish_business(business_id: int) -> None:
    """Publish ``business_id``'s menu once its burst of writes has been quiet for the quiet period."""
    publish_business_now(runtime(), read_business_id(business_id), send_publish, send_reconcile)


#: A read-back retried this often (429s, transient failures) gives up: the next publish or period reads again.
MAX_RECONCILE_RETRIES = 8


def reconcile_retry_when(retries: int, exception: BaseException) -> bool:
    return not isinstance(exception, UnreadablePayload) and retries < MAX_RECONCILE_RETRIES


@dramatiq.actor(
    queue_name=queue_name(_settings.prefix, "reconcile"),
    priority=READ_BACK_PRIORITY,
    retry_when=reconcile_retry_when,
    throws=(UnreadablePayload,),
    max_age=None,
)
def reconcile_business(business_id: int, store_keys: list[str] | None = None, reason: str = "periodic") -> None:
    """Read back ``business_id``'s published menus (``store_keys``, or every store) and repair drift."""
    retries = 0
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    if message is not None:
        retries = int(message.options.get("retries", 0))
    reconcile_business_now(
        runtime(),
        read_business_id(business_id),
        read_store_keys(store_keys),
        reason=str(reason)[:40],
        send_flush=send_flush,
        attempt=retries,
        send_again=send_reconcile,
    )


def send_reconcile(business_id: int, store_keys: list[str] | None, reason: str, delay_ms: int = 0) -> None:
    reconcile_business.send_with_options(args=(business_id, store_keys, reason), delay=max(0, int(delay_ms)))


def send_flush_later(business_id: int, delay_ms: int) -> None:
    """An extra flush after ``delay_ms`` (beside the scheduled one; the lease keeps it harmless)."""
    flush_business.send_with_options(args=(business_id,), delay=max(0, int(delay_ms)))


def send_publish(business_id: int, delay_ms: int) -> None:
    publish_business.send_with_options(args=(business_id,), delay=max(0, int(delay_ms)))


def nudge(business_ids: list[int] | set[int], *, force: bool = False) -> int:
    """Tell the flush actor of each business that changes are pending. Returns messages sent.

    One flush message per business is pending at a time (the ``flush:scheduled`` flag);
    the *dirty* flag makes a running flush look again before it lets go of its lease.
    ``force`` sends regardless of the flag (the sweeper's safety net). A send that fails does
    not stop the others: the first failure is raised once every business was tried.
    """
    sent, failures = nudge_each(business_ids, force=force)
    if failures:
        raise next(iter(failures.values()))
    return len(sent)


def nudge_each(business_ids: list[int] | set[int], *, force: bool = False) -> tuple[list[int], dict[int, Exception]]:
    """:func:`nudge`, answering the businesses a message went out for and the failed sends by business."""
    rt = runtime()
    s = rt.settings
    ids = sorted(set(business_ids))
    if not ids:
        return [], {}
    pipe = rt.redis.pipeline(transaction=False)
    for b in ids:
        pipe.set(rt.keys.flush_dirty(b), 1, px=s.lease_ttl_ms * 4)
        pipe.set(rt.keys.flush_scheduled(b), now_ms(), nx=not force, px=s.lease_ttl_ms)
    replies = pipe.execute()
    sent: list[int] = []
    failures: dict[int, Exception] = {}
    for b, scheduled in zip(ids, replies[1::2], strict=True):
        if not scheduled:
            continue
        try:
            send_flush(b)  # a failed send drops its flag (send_scheduled_flush): the next nudge sends
        except Exception as exc:
            failures[b] = exc
        else:
            sent.append(b)
    return sent, failures


def send_flush(business_id: int) -> None:
    """Send the flush message whose ``flush:scheduled`` flag the caller has just set."""
    rt = runtime()
    delay = rt.settings.flush_window_ms
    send_scheduled_flush(rt, business_id, lambda b: flush_business.send_with_options(args=(b,), delay=delay))
