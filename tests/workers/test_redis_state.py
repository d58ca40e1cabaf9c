"""The Redis-side state, against a real Redis: ledger, lease, budget, publish debounce, dead letters."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from config.redis import Keys
from workers.budget import RateBudget
from workers.changes import Change, Store, Target
from workers.deadletters import DeadLetter, DeadLetterStore
from workers.lease import BusinessLease, LeaseLost
from workers.ledger import Ledger
from workers.publish_state import PublishTracker

STORE = Store(brand_id=5297, branch_id=1293)


def _target(entity: int = 101) -> Target:
    return Target(business_id=398, store=STORE, level="item", entity_id=entity, field="enabled")


def _change(at_ms: int, value: bool, entity: int = 101) -> Change:
    return Change(id=f"c{at_ms}", target=_target(entity), value=value, occurred_at_ms=at_ms)


def test_ledger_keeps_the_newest_version_under_concurrent_writers(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    changes = [_change(1000 + i, i % 2 == 0) for i in range(200)]

    def record(chunk: list[Change]) -> None:
        for c in chunk:
            ledger.record([c])

    threads = [threading.Thread(target=record, args=(changes[i::4][::-1],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    value, version = ledger.desired(_target())  # type: ignore[misc]
    assert value == changes[-1].value
    assert version.startswith(f"{1199:015d}.")
    stats = ledger.stats(398)
    assert stats["recorded"] + stats["superseded"] == 200


def test_an_equal_event_time_is_tie_broken_by_ingest_order(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    first, second = ledger.record([_change(5, False), _change(5, True)])
    assert first and second and second > first
    assert ledger.desired(_target()) == (True, second)


def test_applied_leaves_a_newer_change_pending(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    [v1] = ledger.record([_change(10, False)])
    [v2] = ledger.record([_change(20, True)])
    assert v1 and v2
    ledger.mark_applied(398, [(_target().key(), v1)])
    assert [row.version for row in ledger.pending(398)] == [v2]
    ledger.mark_applied(398, [(_target().key(), v2)])
    assert ledger.pending(398) == []
    # An older change after the newer one was applied is superseded, never re-applied.
    assert ledger.record([_change(15, False)]) == [None]
    assert ledger.pending(398) == []


def test_expect_version_records_only_if_nothing_newer_came_first(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    [v1] = ledger.record([_change(10, False)])
    assert ledger.record([_change(30, True)], expect_versions=[v1]) != [None]
    [v3] = ledger.record([_change(40, False)])
    assert ledger.record([_change(50, True)], expect_versions=[v1]) == [None]
    assert ledger.desired(_target()) == (False, v3)


def test_dead_targets_leave_pending_and_replay_puts_them_back_with_a_new_nonce(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    [v1] = ledger.record([_change(10, False)])
    assert v1
    ledger.mark_dead(398, [(_target().key(), v1)], "dl-1")
    assert ledger.pending(398) == [] and ledger.dead_targets(398) == {_target().key(): "dl-1"}
    assert ledger.unblock(398, [(_target().key(), v1)], new_key=True) == 1
    [row] = ledger.pending(398)
    assert row.nonce == 1 and row.version == v1
    # A newer change moved on: replaying the old version puts nothing back.
    ledger.mark_dead(398, [(_target().key(), v1)], "dl-2")
    ledger.record([_change(20, True)])
    assert ledger.unblock(398, [(_target().key(), v1)], new_key=False) == 0


def test_a_view_of_some_scopes_holds_exactly_their_targets(r: Any, keys: Keys) -> None:
    other = Store(brand_id=5297, branch_id=1294)
    business_level = Target(business_id=398, store=None, level="item", entity_id=101, field="enabled")
    elsewhere = Target(business_id=398, store=other, level="item", entity_id=101, field="enabled")
    ledger = Ledger(r, keys)
    changes = [_change(1_000, False), _change(1_001, True, entity=102)]
    changes += [
        Change(id=f"x{i}", target=t, value=True, occurred_at_ms=1_002)
        for i, t in enumerate((business_level, elsewhere))
    ]
    ledger.record(changes)
    whole = ledger.view(398)
    assert len(whole) == 4
    some = ledger.view(398, scopes={STORE.key(), "*"})
    assert some == {k: v for k, v in whole.items() if k != elsewhere.key()}


def _record_delivered(r: Any, keys: Keys, changes: list[Change], deliveries: list[tuple[str, int]]) -> Any:
    """One record call of business 398 carrying ``deliveries`` (mark key, number of changes)."""
    from workers.ledger import read_record_reply, record_call
    from workers.scripts import script

    k, a = record_call(
        keys,
        398,
        changes,
        now=5_000,
        flag_ttl_ms=1_000,
        history_max=100,
        source="standard",
        actor="t",
        received_ms=5_000,
        deliveries=deliveries,
        delivery_ttl_s=60,
    )
    return read_record_reply(script(r, "record")(keys=k, args=a))


def test_a_marked_delivery_records_nothing_and_an_unmarked_one_is_recorded_and_marked(r: Any, keys: Keys) -> None:
    mark = keys.business(398, "delivery", "standard", "msg-1")

    def call(change: Change) -> Any:
        return _record_delivered(r, keys, [change], [(mark, 1)])

    first = call(_change(1_000, False))
    assert first.delivered == [False] and first.versions[0] is not None and first.send
    assert 0 < r.ttl(mark) <= 60
    history = r.xlen(keys.business(398, "history"))
    # The same delivery again, even with another value: nothing recorded, no history, no nudge.
    again = call(_change(2_000, True))
    assert again.delivered == [True] and again.versions == [None] and not again.send
    assert Ledger(r, keys).desired(_target())[0] is False  # type: ignore[index]
    assert r.xlen(keys.business(398, "history")) == history


def test_deliveries_in_one_call_are_each_recorded_once_and_a_copy_in_the_same_call_is_delivered(
    r: Any, keys: Keys
) -> None:
    """Three deliveries in one record call: a new one of two changes, one marked before, and a copy
    of the first. Only the first is recorded; the other two answer delivered, change by change."""
    new, old = (keys.business(398, "delivery", "standard", m) for m in ("msg-new", "msg-old"))
    r.set(old, 1, ex=60)
    items = [Change(id=f"c{i}", target=_target(500 + i), value=False, occurred_at_ms=1_000) for i in range(2)]
    stale = Change(id="c-old", target=_target(510), value=False, occurred_at_ms=1_000)
    copy = [Change(id=f"c{i}", target=_target(500 + i), value=True, occurred_at_ms=2_000) for i in range(2)]
    reply = _record_delivered(r, keys, [*items, stale, *copy], [(new, 2), (old, 1), (new, 2)])
    assert reply.delivered == [False, False, True, True, True]
    assert [v is not None for v in reply.versions] == [True, True, False, False, False]
    assert reply.send
    ledger = Ledger(r, keys)
    assert [ledger.desired(c.target)[0] for c in items] == [False, False]  # type: ignore[index]
    assert ledger.desired(stale.target) is None
    assert 0 < r.ttl(new) <= 60
    assert r.xlen(keys.business(398, "history")) == 2
    with pytest.raises(ValueError, match="cover every change"):
        _record_delivered(r, keys, items, [(new, 1)])


def test_lease_is_exclusive_and_a_nudge_while_held_means_flush_again(r: Any, keys: Keys) -> None:
    a, b = BusinessLease(r, keys, 398, 5000), BusinessLease(r, keys, 398, 5000)
    assert a.acquire() and not b.acquire()
    r.set(a.dirty_key, 1)  # a nudge arrived while a held the lease
    assert a.try_release() is False and a.token is not None
    assert a.try_release() is True
    assert b.acquire()
    b.ensure_held()
    r.delete(b.key)  # expired
    with pytest.raises(LeaseLost):
        b.ensure_held()
    assert b.lost.is_set()


def test_a_heartbeat_keeps_a_lease_past_its_ttl_and_a_dead_holder_frees_it_within_one_ttl(r: Any, keys: Keys) -> None:
    holder, other = BusinessLease(r, keys, 398, 300), BusinessLease(r, keys, 398, 300)
    assert holder.acquire()
    with holder.keep_alive() as heartbeat:
        time.sleep(1.0)  # more than three TTLs, with nothing but the heartbeat renewing
        assert not other.acquire()
        holder.ensure_held()
    assert heartbeat.beats >= 6
    # No heartbeat any more (as after a SIGKILL): the lease is gone within one TTL.
    time.sleep(0.4)
    assert other.acquire()
    # The old holder finds out at its next write, and the heartbeat would stop too.
    with pytest.raises(LeaseLost):
        holder.ensure_held()


def test_a_lease_is_released_only_by_its_holder(r: Any, keys: Keys) -> None:
    a, b = BusinessLease(r, keys, 398, 5000), BusinessLease(r, keys, 398, 5000)
    assert a.acquire()
    r.delete(a.key)  # a's lease expired ...
    assert b.acquire()  # ... and b took it
    a.release()  # a's late release must not free b's lease
    assert r.get(b.key) == b.token
    b.release()
    assert not r.exists(b.key)


def test_one_flush_watches_a_taken_lease_until_it_would_expire(r: Any, keys: Keys) -> None:
    holder = BusinessLease(r, keys, 398, 2000)
    first, second = BusinessLease(r, keys, 398, 2000), BusinessLease(r, keys, 398, 2000)
    assert first.watch() == 0  # free: acquire instead
    assert holder.acquire()
    remaining = first.watch()
    assert remaining is not None and 1500 < remaining <= 2000
    assert second.watch() is None  # one watcher at a time
    assert 1500 < int(r.pttl(first.watch_key)) <= 2000  # the watch ends when the lease would


def test_budget_allows_the_burst_then_paces_and_a_429_pushes_everyone_back(r: Any, keys: Keys) -> None:
    budget = RateBudget(r, keys, 398, per_minute=600, burst=5)  # one request per 100 ms
    assert [budget.take() for _ in range(5)] == [0] * 5
    wait = budget.take()
    assert 0 < wait <= 100
    other_process = RateBudget(r, keys, 398, per_minute=600, burst=5)
    other_process.penalize(2000)
    assert budget.take() > 1500


def test_publish_state_compare_and_set_on_the_generation(r: Any, keys: Keys) -> None:
    tracker = PublishTracker(r, keys, 398)
    assert tracker.touch(["5297:1293"], 3000) is True  # first write: send the publish message
    assert tracker.touch(["5297:5913"], 3000) is False  # one pending message per business
    state = tracker.state()
    assert tracker.stores() == {"5297:1293", "5297:5913"}
    tracker.touch(["5297:1293"], 3000)  # a write lands during the publish call
    assert tracker.complete(state.generation) is False
    assert tracker.complete(tracker.state().generation) is True
    assert tracker.state().empty
    # Generations never repeat, so publish idempotency keys never repeat either.
    tracker.touch(["5297:1293"], 3000)
    assert tracker.state().generation > state.generation + 1


def test_dead_letter_store_lists_counts_and_drops(r: Any, keys: Keys) -> None:
    store = DeadLetterStore(r, keys)
    a = store.add(DeadLetter(business_id=398, error_code="state_idempotency_conflict", http_status=409))
    store.add(DeadLetter(business_id=398, error_code="request_invalid", http_status=400))
    store.add(DeadLetter(business_id=1001, error_code="request_invalid", http_status=400))
    assert store.count() == 3 and store.count(398) == 2
    assert store.counts_by_code() == {"state_idempotency_conflict": 1, "request_invalid": 2}
    assert store.get(a.id) == a
    assert store.drop(a.id) and not store.drop(a.id)
    assert store.counts_by_code(398) == {"request_invalid": 1}
