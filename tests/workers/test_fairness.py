"""Fairness: a flush holds its thread for one slice, a large fresh flush goes to the backlog lane.

The slice decision is pure and property-tested; the lanes are exercised through the real flush
against a real Redis and the sandbox over HTTP.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pipeline_support import BUSINESS, STORES, item_change

from workers.fairness import Lane, SlicePolicy, SliceStep, decide_slice
from workers.flush import flush_business_now

policies = st.builds(SlicePolicy, slice_ms=st.integers(1, 10_000), fresh_max_calls=st.integers(1, 20))
lanes = st.sampled_from(list(Lane))
ms = st.integers(0, 60_000)


@given(policies, ms, st.integers(1, 500), ms)
def test_the_first_call_on_the_backlog_lane_always_goes(
    policy: SlicePolicy, elapsed: int, left: int, wait: int
) -> None:
    step = decide_slice(policy, Lane.BACKLOG, elapsed_ms=elapsed, calls_made=0, calls_left=left, wait_ms=wait)
    assert step is SliceStep.GO


@given(policies, ms, st.integers(1, 500))
def test_a_fresh_flush_yields_before_its_first_call_exactly_when_its_round_is_large(
    policy: SlicePolicy, elapsed: int, left: int
) -> None:
    step = decide_slice(policy, Lane.FRESH, elapsed_ms=elapsed, calls_made=0, calls_left=left)
    assert (step is SliceStep.YIELD) == (left > policy.fresh_max_calls)


@given(policies, lanes, ms, st.integers(1, 500), st.integers(1, 500), ms)
def test_after_its_first_call_a_flush_yields_exactly_when_the_slice_is_spent(
    policy: SlicePolicy, lane: Lane, elapsed: int, made: int, left: int, wait: int
) -> None:
    step = decide_slice(policy, lane, elapsed_ms=elapsed, calls_made=made, calls_left=left, wait_ms=wait)
    assert (step is SliceStep.YIELD) == (elapsed + wait >= policy.slice_ms)


@given(policies, lanes, ms, ms, st.integers(1, 500), st.integers(1, 500))
def test_once_a_slice_yields_it_yields_at_every_later_moment(
    policy: SlicePolicy, lane: Lane, elapsed: int, later: int, made: int, left: int
) -> None:
    kwargs = {"calls_made": made, "calls_left": left}
    if decide_slice(policy, lane, elapsed_ms=elapsed, **kwargs) is SliceStep.YIELD:
        assert decide_slice(policy, lane, elapsed_ms=elapsed + later, **kwargs) is SliceStep.YIELD


def _four_call_burst(at: int) -> list[Any]:
    """Two items per value in each of three stores: with one id per call, four enable calls."""
    return [
        item_change(item, item % 2 == 0, at + n, store=store)
        for n, (store, item) in enumerate((s, i) for s in STORES for i in (101, 102, 103, 104))
    ]


def _flush(p: Any, lane: Lane, handed: list[int]) -> None:
    flush_business_now(p.rt, BUSINESS, lambda b, d: None, lambda b, d: None, handed.append, lane)


def test_a_large_fresh_flush_hands_its_business_to_the_backlog_lane_before_any_call(make_pipeline: Any) -> None:
    p = make_pipeline(start=False, enable_batch_size=1)
    p.submit(_four_call_burst(1_795_300_000_000))
    pending = p.rt.ledger.pending_count(BUSINESS)
    handed: list[int] = []
    _flush(p, Lane.FRESH, handed)
    assert handed == [BUSINESS]
    assert p.writes() == []
    assert p.rt.ledger.pending_count(BUSINESS) == pending == 12
    # While the backlog message waits, nudges send nothing more (the flag stays set).
    assert p.rt.redis.exists(p.rt.keys.flush_scheduled(BUSINESS))
    assert not p.rt.redis.exists(p.rt.keys.business(BUSINESS, "lease"))


def test_a_small_fresh_flush_writes_at_once(make_pipeline: Any) -> None:
    p = make_pipeline(start=False)
    p.submit([item_change(101, False, 1_795_300_100_000, store=STORES[0])])
    handed: list[int] = []
    _flush(p, Lane.FRESH, handed)
    assert handed == []
    assert len(p.writes()) == 1
    assert p.rt.ledger.pending_count(BUSINESS) == 0


def test_backlog_slices_make_one_call_each_once_the_slice_is_spent_and_lose_nothing(make_pipeline: Any) -> None:
    p = make_pipeline(start=False, flush_slice_ms=1, enable_batch_size=1)
    p.submit(_four_call_burst(1_795_300_200_000))
    slices = 0
    handed = [BUSINESS]
    while handed:
        handed.clear()
        before = len(p.writes())
        _flush(p, Lane.BACKLOG, handed)
        slices += 1
        assert len(p.writes()) == before + 1, "each slice makes its first call, then yields"
        assert slices <= 4
    assert slices == 4
    assert p.rt.ledger.pending_count(BUSINESS) == 0
    state = p.sandbox.state(BUSINESS)
    for store in STORES:
        for item in (101, 102, 103, 104):
            assert state["stores"][store.key()]["overrides"]["item"][str(item)]["enabled"] is (item % 2 == 0)


def test_a_worker_runs_a_waiting_flush_before_waiting_read_backs(make_pipeline: Any) -> None:
    """Read-backs check what was written; flushes write. With one thread busy on a slow read-back, a
    flush that arrived after two more read-backs runs next, not after them (FIFO before)."""
    import time

    import dramatiq

    import workers.actors

    seen: list[str] = []

    class RunOrder(dramatiq.Middleware):
        def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
            seen.append(message.actor_name)

    p = make_pipeline(start=False)
    order = RunOrder()
    p.broker.add_middleware(order)
    p.sandbox.set_faults(latency_ms=400)
    try:
        p.rt.ledger.record([item_change(101, False, 1_795_300_300_000, store=STORES[0])])
        store = [STORES[0].key()]
        p.start(threads=1)
        workers.actors.send_reconcile(BUSINESS, store, "periodic")  # holds the one thread >= 400 ms
        time.sleep(0.1)
        workers.actors.send_reconcile(BUSINESS, store, "periodic")
        workers.actors.send_reconcile(BUSINESS, store, "periodic")
        time.sleep(0.15)  # both fetched into the worker before the flush is sent
        workers.actors.flush_business.send(BUSINESS)
        deadline = time.monotonic() + 20
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen[:2] == ["reconcile_business", "flush_business"], seen
    finally:
        p.sandbox.clear_faults()
        p.stop()
        p.broker.middleware.remove(order)
