"""The sweeper re-nudges a stranded business and re-sends a stranded publish, and leaves healthy ones alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from workers.changes import Change, Store, Target
from workers.clock import now_ms
from workers.queues import queue_name
from workers.runtime import Runtime
from workers.sweep_decision import SCHEDULED_GRACE_MS
from workers.sweeper import PUBLISH_GRACE_MS, RENUDGE_MS, sweep_once

BUSINESS = 398


@pytest.fixture
def broker(r: Any) -> Iterator[Any]:
    import workers.actors

    workers.actors.broker.flush_all()
    yield workers.actors.broker
    workers.actors.broker.flush_all()


@pytest.fixture
def rt(r: Any) -> Iterator[Runtime]:
    runtime = Runtime(Settings(sweep_stale_after_s=0.0))  # type: ignore[call-arg]
    yield runtime
    runtime.close()


def _delayed(rt: Runtime, queue: str) -> int:
    return int(rt.redis.hlen(f"{rt.settings.prefix}-dramatiq:{queue}.DQ.msgs"))


def _strand(rt: Runtime, entity: int = 101) -> None:
    """A change recorded in the ledger whose flush message was lost, and its flag expired since."""
    target = Target(
        business_id=BUSINESS,
        store=Store(brand_id=5297, branch_id=1293),
        level="item",
        entity_id=entity,
        field="enabled",
    )
    rt.ledger.record([Change(id=f"lost-{entity}", target=target, value=False, occurred_at_ms=1_795_000_000_000)])
    rt.redis.delete(rt.keys.flush_scheduled(BUSINESS))


def _pending_entry(rt: Runtime) -> float | None:
    return rt.redis.zscore(rt.keys.attention_of(BUSINESS, "pending"), str(BUSINESS))


def _due_again(rt: Runtime) -> None:
    """Bring the business's pending entry forward, as a new pending target would (an early entry)."""
    rt.redis.zadd(rt.keys.attention_of(BUSINESS, "pending"), {str(BUSINESS): 0})


def test_a_stranded_business_is_nudged_once(rt: Runtime, broker: Any) -> None:
    _strand(rt)
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 0
    before = now_ms()
    counts = sweep_once(rt)
    assert counts["stale"] == 1 and counts["nudged"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1
    # The flush is now scheduled: the business is held back for the re-nudge window ...
    entry = _pending_entry(rt)
    assert entry is not None and entry >= before + RENUDGE_MS
    assert sweep_once(rt)["businesses"] == 0
    # ... and looked at early (a new pending target), it is left alone.
    _due_again(rt)
    again = sweep_once(rt)
    assert again["nudged"] == 0 and again["skipped_scheduled"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1


def test_a_long_queued_business_gets_one_extra_flush_message_per_renudge_window(rt: Runtime, broker: Any) -> None:
    flush = queue_name(rt.settings.prefix, "flush")
    _strand(rt)
    assert sweep_once(rt)["nudged"] == 1
    # Its message waits behind a long queue: the flag is long overdue, nothing ran yet.
    rt.redis.set(rt.keys.flush_scheduled(BUSINESS), now_ms() - SCHEDULED_GRACE_MS - 10_000, px=60_000)
    for _ in range(3):
        _due_again(rt)
        assert sweep_once(rt)["skipped_renudged"] == 1
    assert _delayed(rt, flush) == 1
    # Once the window is over (the mark gone), a message that is still missing is sent again.
    rt.redis.delete(rt.keys.flush_renudged(BUSINESS))
    _due_again(rt)
    assert sweep_once(rt)["nudged"] == 1
    assert _delayed(rt, flush) == 2


def test_a_flag_overdue_by_less_than_the_flush_queues_wait_is_trusted(rt: Runtime, broker: Any) -> None:
    from workers.queue_wait import QueueWait

    _strand(rt)
    # Flush messages start 60 s late (every worker busy): a flag 20 s overdue is queued, not lost.
    QueueWait(rt.redis, rt.keys).note("flush", 60_000)
    rt.redis.set(rt.keys.flush_scheduled(BUSINESS), now_ms() - SCHEDULED_GRACE_MS - 20_000, px=120_000)
    counts = sweep_once(rt)
    assert counts["skipped_scheduled"] == 1 and counts["nudged"] == 0
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 0
    # Once flushes start on time again, the same flag is taken for lost.
    rt.redis.delete(QueueWait(rt.redis, rt.keys).key("flush"))
    _due_again(rt)
    assert sweep_once(rt)["nudged"] == 1


def test_a_business_leaves_the_pending_index_once_nothing_is_pending(rt: Runtime, broker: Any) -> None:
    _strand(rt, entity=101)
    _strand(rt, entity=102)
    rows = {row.target.entity_id: row for row in rt.ledger.pending(BUSINESS)}
    rt.ledger.mark_applied(BUSINESS, [(rows[101].target.key(), rows[101].version)])
    assert _pending_entry(rt) is not None  # one target still pending
    rt.ledger.mark_applied(BUSINESS, [(rows[102].target.key(), rows[102].version)])
    assert _pending_entry(rt) is None  # a busy-then-idle business costs the next pass nothing
    assert sweep_once(rt)["businesses"] == 0


def test_a_new_pending_target_brings_a_held_back_business_forward(rt: Runtime, broker: Any) -> None:
    _strand(rt)
    assert sweep_once(rt)["nudged"] == 1
    held = _pending_entry(rt)
    rt.ledger.mark_applied(BUSINESS, [(k, v) for k, (_, v) in rt.ledger.all_desired(BUSINESS).items()])
    _strand(rt, entity=102)  # newly pending: its record files the business at its own time
    entry = _pending_entry(rt)
    assert entry is not None and held is not None and entry < held
    counts = sweep_once(rt)
    assert counts["businesses"] == 1 and counts["stale"] == 1


def test_a_fresh_leased_or_blocked_business_is_left_alone(rt: Runtime, broker: Any) -> None:
    _strand(rt)
    patient = Runtime(Settings(sweep_stale_after_s=60.0))  # type: ignore[call-arg]
    assert sweep_once(patient)["stale"] == 0
    patient.close()
    rt.redis.set(rt.keys.business(BUSINESS, "lease"), "someone", px=5_000)
    # A leased business gets one flush waiting for the lease to expire (its holder may be dead) ...
    assert sweep_once(rt)["skipped_watched"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1
    assert sweep_once(rt)["businesses"] == 0  # held back until that flush is due
    # ... and only one, however often the sweeper looks.
    _due_again(rt)
    assert sweep_once(rt)["skipped_leased"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1
    rt.redis.delete(rt.keys.business(BUSINESS, "lease"))
    rt.redis.set(rt.keys.business(BUSINESS, "credential", "blocked"), "auth_invalid_credentials")
    _due_again(rt)
    assert sweep_once(rt)["skipped_blocked"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1


def test_a_scheduled_flag_whose_message_is_long_overdue_no_longer_hides_a_business(rt: Runtime, broker: Any) -> None:
    _strand(rt)
    flag = rt.keys.flush_scheduled(BUSINESS)
    # The flag of a message due 1 s from now is trusted ...
    rt.redis.set(flag, now_ms() + 1_000, px=60_000)
    assert sweep_once(rt)["skipped_scheduled"] == 1
    # ... the flag of one that was due long ago (it died with a SIGKILLed worker) is not.
    rt.redis.set(flag, now_ms() - SCHEDULED_GRACE_MS - 1_000, px=60_000)
    _due_again(rt)
    assert sweep_once(rt)["nudged"] == 1
    assert _delayed(rt, queue_name(rt.settings.prefix, "flush")) == 1


def test_a_stranded_publish_is_sent_again_once_per_window(rt: Runtime, broker: Any) -> None:
    _strand(rt)
    rt.ledger.mark_applied(BUSINESS, [(k, v) for k, (_, v) in rt.ledger.all_desired(BUSINESS).items()])
    long_ago = now_ms() - rt.settings.publish_max_wait_ms - PUBLISH_GRACE_MS - 1_000
    state = rt.keys.business(BUSINESS, "publish")
    rt.redis.hset(state, mapping={"gen": 4, "first": long_ago, "due": long_ago + 300, "scheduled": long_ago})
    counts = sweep_once(rt)
    assert counts["publishes_resent"] == 1
    publish = queue_name(rt.settings.prefix, "publish")
    assert _delayed(rt, publish) + rt.redis.llen(f"{rt.settings.prefix}-dramatiq:{publish}") == 1
    assert int(rt.redis.hget(state, "scheduled")) > long_ago
    assert sweep_once(rt)["publishes_resent"] == 0
    # A healthy burst (first write recent) is not touched.
    rt.redis.hset(state, mapping={"first": now_ms(), "scheduled": long_ago})
    assert sweep_once(rt)["publishes_resent"] == 0


def test_the_scheduler_finds_the_sweeper() -> None:
    from producers.scheduler import load_sweeper

    assert load_sweeper() is sweep_once


def _count_commands(rt: Runtime) -> list[str]:
    """Every command ``rt.redis`` sends from now on (scripts count once: EVALSHA)."""
    sent: list[str] = []
    client = rt.redis
    real = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **options)

    client.execute_command = counting  # type: ignore[method-assign]
    return sent


def _settled_businesses(rt: Runtime, ids: range) -> None:
    """Businesses that had work once and have nothing pending now."""
    changes = [
        Change(
            id=f"c-{b}",
            target=Target(business_id=b, store=None, level="item", entity_id=1, field="enabled"),
            value=True,
            occurred_at_ms=1_795_000_000_000,
        )
        for b in ids
    ]
    versions = rt.ledger.record(changes)
    for change, version in zip(changes, versions, strict=True):
        assert version is not None
        rt.ledger.mark_applied(change.target.business_id, [(change.target.key(), version)])


def test_an_idle_business_costs_a_pass_nothing(rt: Runtime, broker: Any) -> None:
    _settled_businesses(rt, range(1_000, 1_001))
    sweep_once(rt)  # the settled business's early entry is claimed once and dropped
    sent = _count_commands(rt)
    counts = sweep_once(rt)
    one = list(sent)
    assert counts["businesses"] == 0
    _settled_businesses(rt, range(1_001, 1_200))
    sweep_once(rt)
    assert rt.redis.zcard(rt.keys.attention_of(BUSINESS, "pending")) == 0
    sent.clear()
    assert sweep_once(rt)["businesses"] == 0
    assert sent == one, "200 idle businesses cost a pass more commands than 1"
    assert len(one) <= 5, one  # read-back seeding check and claim, index check and claim
    # ... and a stranded one among them is still found.
    _strand(rt)
    sent.clear()
    counts = sweep_once(rt)
    assert counts["businesses"] == 1 and counts["nudged"] == 1
    assert len(sent) < 20, sent


def test_the_index_finds_due_suspects_and_stranded_publishes(rt: Runtime, broker: Any) -> None:
    from workers.publish_state import PublishTracker

    sweep_once(rt)  # the indexes exist: what follows is found through them alone
    _strand(rt)
    rows = rt.ledger.pending(BUSINESS)
    rt.ledger.mark_applied(BUSINESS, [(row.target.key(), row.version) for row in rows])
    sweep_once(rt)
    assert rt.redis.zscore(rt.keys.attention_of(BUSINESS, "pending"), str(BUSINESS)) is None
    # A suspect repeat comes due: the sweeper puts it back in pending.
    rt.ledger.mark_suspect(BUSINESS, [rows[0].target.key()], now_ms() - 1)
    counts = sweep_once(rt)
    assert counts["businesses"] == 1 and rt.ledger.pending_count(BUSINESS) == 1
    assert rt.redis.zscore(rt.keys.attention_of(BUSINESS, "suspect"), str(BUSINESS)) is None
    # A publish touched long ago whose message was lost: its entry comes due, it is sent again.
    tracker = PublishTracker(rt.redis, rt.keys, BUSINESS)
    assert tracker.touch(["5297:1293"], 300)
    index = rt.keys.attention_of(BUSINESS, "publish")
    assert rt.redis.zscore(index, str(BUSINESS)) == int(tracker.raw()["scheduled"])
    long_ago = now_ms() - rt.settings.publish_max_wait_ms - PUBLISH_GRACE_MS - 1_000
    rt.redis.hset(tracker.state_key, mapping={"first": long_ago, "scheduled": long_ago})
    rt.redis.zadd(index, {str(BUSINESS): long_ago})  # as touch would have filed it then
    assert sweep_once(rt)["publishes_resent"] == 1
    assert rt.redis.zscore(index, str(BUSINESS)) > long_ago
    assert sweep_once(rt)["publishes_resent"] == 0
