"""How late flush messages start: measured per message, noted per lane by a worker's middleware."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from config.redis import Keys
from workers.queue_wait import READ_EVERY_MS, WAIT_MAX_MS, QueueWait, RecentWait, flag_ttl_ms, message_wait_ms


@given(sent=st.integers(0, 10**12), delay=st.integers(0, 10**6), late=st.integers(-(10**6), 10**6))
def test_a_message_waits_from_its_due_time_never_less_than_nothing(sent: int, delay: int, late: int) -> None:
    eta = sent + delay
    now = max(sent, eta + late)
    assert message_wait_ms({"eta": eta}, sent, now) == max(0, now - eta)
    assert message_wait_ms({}, sent, now) == now - sent  # sent without a delay: due when sent


def test_a_worker_notes_how_late_each_flush_message_started(r: Any) -> None:
    """A real message through the broker's middleware stack: the flush lane's wait is noted, another
    lane's is not, and the sweeper reads the longest, capped."""
    import workers.actors
    from workers.middleware import QueueWaitNote
    from workers.runtime import runtime

    rt = runtime()
    waits = QueueWait(rt.redis, rt.keys)
    note = next(m for m in workers.actors.broker.middleware if isinstance(m, QueueWaitNote))
    flush = workers.actors.flush_business.message_with_options(args=(1,), delay=0)
    late = flush.copy(options={"eta": flush.message_timestamp - 42_000})
    note.before_process_message(workers.actors.broker, late)
    assert 42_000 <= int(r.get(waits.key("flush"))) < 52_000
    assert r.pttl(waits.key("flush")) > 0  # it falls back to nothing once flushes stop starting late
    publish = workers.actors.publish_business.message_with_options(args=(1,), delay=0)
    late_publish = publish.copy(options={"eta": publish.message_timestamp - 99_000})
    note.before_process_message(workers.actors.broker, late_publish)
    assert waits.current_ms() < 52_000
    waits.note("flush-backlog", WAIT_MAX_MS * 3)
    assert waits.current_ms() == WAIT_MAX_MS
    r.delete(waits.key("flush"), waits.key("flush-backlog"))


@given(lease=st.integers(1, 10**6), wait=st.integers(-(10**6), 10**9))
def test_a_new_flag_lives_the_lease_ttl_plus_the_expected_wait_never_past_the_cap(lease: int, wait: int) -> None:
    ttl = flag_ttl_ms(lease, wait)
    assert lease <= ttl <= lease + WAIT_MAX_MS
    assert ttl == lease + max(0, min(wait, WAIT_MAX_MS))


def test_a_process_reads_the_wait_at_most_once_a_second(r: Any, keys: Keys) -> None:
    waits = QueueWait(r, keys)
    recent = RecentWait()
    waits.note("flush", 30_000)
    assert waits.recent_ms(recent, now_ms=1_000_000) == 30_000
    r.delete(waits.key("flush"))
    assert waits.recent_ms(recent, now_ms=1_000_000 + READ_EVERY_MS - 1) == 30_000  # not read again yet
    assert waits.recent_ms(recent, now_ms=1_000_000 + READ_EVERY_MS) == 0


def test_a_change_recorded_while_flushes_start_late_sets_a_flag_that_outlives_the_wait(r: Any) -> None:
    """Under a queue longer than the lease TTL, a flag set for the lease TTL alone expired while its
    message waited, and the business's next change sent another one."""
    from workers.changes import Change, Store, Target
    from workers.runtime import runtime
    from workers.submit import submit_changes

    rt = runtime()
    QueueWait(rt.redis, rt.keys).note("flush-backlog", 45_000)
    rt.recent_wait.store(0, 0)  # read again now
    target = Target(business_id=398, store=Store(brand_id=1, branch_id=1), level="item", entity_id=7, field="enabled")
    submit_changes([Change(id="late-1", target=target, value=False, occurred_at_ms=1_000)])
    assert r.pttl(rt.keys.flush_scheduled(398)) > rt.settings.lease_ttl_ms + 40_000


def test_a_change_recorded_while_flushes_start_late_is_not_claimed_by_the_sweeper_while_its_flag_holds(
    r: Any,
) -> None:
    """Under a 45 s flush queue, a business filed at its pending time was claimed by every pass from
    the stale age on, only to be found waiting for its queued flush; it now comes due when the
    sweeper would stop trusting its flag, and not a millisecond later."""
    from workers.changes import Change, Store, Target
    from workers.clock import now_ms
    from workers.runtime import runtime
    from workers.submit import submit_changes
    from workers.sweeper import claim_attention, sweep_limits

    rt = runtime()
    waits = QueueWait(rt.redis, rt.keys)
    waits.note("flush", 45_000)
    rt.recent_wait.store(0, 0)  # read again now
    target = Target(business_id=399, store=Store(brand_id=1, branch_id=1), level="item", entity_id=7, field="enabled")
    submit_changes([Change(id="late-2", target=target, value=False, occurred_at_ms=1_000)])
    flag = int(r.get(rt.keys.flush_scheduled(399)))
    limits = sweep_limits(rt)
    trusted_until = flag + limits.flush_window_ms + limits.scheduled_grace_ms
    claimed_early = claim_attention(rt, now_ms() + limits.stale_ms + 1, limits.stale_ms, limits.publish_stale_ms)
    assert 399 not in claimed_early
    assert 399 in claim_attention(rt, trusted_until + 1, limits.stale_ms, limits.publish_stale_ms)
    r.delete(waits.key("flush"))
