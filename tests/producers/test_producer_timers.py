"""Timed re-enables: fire once at ``until``, unless a newer change came first; survive a crash."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from producer_helpers import BUSINESS, STORE

from config.redis import Keys
from producers import scheduler
from producers.intake import accept
from producers.scheduler import run_due
from producers.timers import Timers
from workers import clock
from workers.changes import Change, Store, Target, version_ms
from workers.ledger import Ledger

T0 = 1_700_000_000_000


def target(entity: int = 101) -> Target:
    return Target(
        business_id=BUSINESS,
        store=Store(brand_id=STORE[0], branch_id=STORE[1]),
        level="item",
        entity_id=entity,
        field="enabled",
    )


def change(value: bool, at: int, until: int | None = None, cid: str = "c", entity: int = 101) -> Change:
    return Change(id=cid, target=target(entity), value=value, occurred_at_ms=at, until_ms=until)


@pytest.fixture
def timers(r: redis.Redis, keys: Keys) -> Timers:
    return Timers(r, keys)


def test_timer_fires_at_until_and_only_once(timers: Timers, ledger: Ledger) -> None:
    result = accept([change(False, T0, until=T0 + 500, cid="pos-1")], timers=timers)
    assert result.accepted == 1
    assert timers.counts() == {"due": 1, "processing": 0}
    assert run_due(T0 + 499, timers=timers).fired == 0  # not yet
    assert ledger.desired(target())[0] is False  # type: ignore[index]
    assert run_due(T0 + 500, timers=timers).fired == 1
    value, version = ledger.desired(target())  # type: ignore[misc]
    assert value is True and version_ms(version) == T0 + 500
    rows = {row.target.key(): row for row in ledger.pending(BUSINESS)}
    assert rows[target().key()].change_id == "pos-1:until"
    assert run_due(T0 + 10_000, timers=timers) == scheduler.RunDueResult(0, 0, 0)
    assert timers.counts() == {"due": 0, "processing": 0}


def test_newer_change_cancels_the_timer(timers: Timers, ledger: Ledger) -> None:
    accept([change(False, T0, until=T0 + 500)], timers=timers)
    accept([change(False, T0 + 100, cid="later")], timers=timers)  # a newer change came first
    result = run_due(T0 + 500, timers=timers)
    assert (result.fired, result.cancelled) == (0, 1)
    value, version = ledger.desired(target())  # type: ignore[misc]
    assert value is False and version_ms(version) == T0 + 100
    assert timers.counts() == {"due": 0, "processing": 0}


def test_only_disabling_changes_that_won_get_a_timer(timers: Timers) -> None:
    accept([change(False, T0 + 1000)], timers=timers)
    accept([change(False, T0, until=T0 + 5000, cid="old")], timers=timers)  # superseded: no timer
    accept([change(True, T0 + 2000, until=T0 + 5000, entity=102)], timers=timers)  # enabling: nothing to undo
    assert timers.counts()["due"] == 0


def test_each_target_of_a_bulk_change_gets_its_own_timer(timers: Timers, ledger: Ledger) -> None:
    accept([change(False, T0, until=T0 + 10, entity=e) for e in (101, 102, 103)], timers=timers)
    assert run_due(T0 + 10, timers=timers).fired == 3
    assert all(ledger.desired(target(e))[0] is True for e in (101, 102, 103))  # type: ignore[index]


def test_claim_is_atomic_between_schedulers(timers: Timers, r: redis.Redis, keys: Keys) -> None:
    accept([change(False, T0, until=T0 + 10, entity=e) for e in range(101, 141)], timers=timers)
    other = Timers(r, keys)
    seen: list[list[str]] = []

    def claim(t: Timers) -> None:
        got: list[str] = []
        while True:
            due, _ = t.claim_due(T0 + 10, limit=3)
            if not due:
                break
            got += [x.id for x in due]
        seen.append(got)

    threads = [threading.Thread(target=claim, args=(t,)) for t in (timers, other, timers, other)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = [i for got in seen for i in got]
    assert len(ids) == 40 and len(set(ids)) == 40


def test_crash_between_claim_and_record_loses_nothing(
    timers: Timers, ledger: Ledger, r: redis.Redis, keys: Keys
) -> None:
    accept([change(False, T0, until=T0 + 10)], timers=timers)
    claimed, _ = timers.claim_due(T0 + 10)  # the scheduler dies here
    assert len(claimed) == 1 and timers.counts() == {"due": 0, "processing": 1}
    restarted = Timers(r, keys)  # a new process
    assert restarted.recover(T0 + 20, stale_ms=60_000) == 0  # a recent claim may still be in flight
    assert restarted.recover(T0 + 20, stale_ms=0) == 1
    assert run_due(T0 + 20, timers=restarted).fired == 1
    assert ledger.desired(target())[0] is True  # type: ignore[index]


def test_double_fire_is_harmless(timers: Timers, ledger: Ledger, r: redis.Redis, keys: Keys) -> None:
    accept([change(False, T0, until=T0 + 10)], timers=timers)
    claimed, _ = timers.claim_due(T0 + 10)
    assert run_due(T0 + 10, timers=timers).fired == 0
    timers.recover(T0 + 10, 0)
    assert run_due(T0 + 10, timers=timers).fired == 1
    _, version = ledger.desired(target())  # type: ignore[misc]
    # the same timer again (e.g. recovered twice): the version check makes it a no-op
    timers.schedule([(change(False, T0, until=T0 + 10), claimed[0].expect_version)])
    assert run_due(T0 + 10, timers=timers).cancelled == 1
    assert ledger.desired(target())[1] == version  # type: ignore[index]


def test_unreadable_timer_is_dropped(timers: Timers, r: redis.Redis) -> None:
    r.zadd(timers.due_key, {"garbage": 1})
    r.hset(timers.data_key, "garbage", "{not json")
    assert run_due(T0, timers=timers).dropped == 1
    assert timers.counts() == {"due": 0, "processing": 0}


def test_scheduler_loop_fires_and_stops(timers: Timers, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    sweeps: list[int] = []
    monkeypatch.setattr(scheduler, "load_sweeper", lambda: lambda: sweeps.append(1))
    now = int(time.time() * 1000)
    accept([change(False, now - 1000, until=now + 100)], timers=timers)
    stop = threading.Event()
    thread = threading.Thread(
        target=scheduler.loop, args=(stop,), kwargs={"timers": timers, "sweep_interval_s": 0.05, "tick_s": 0.02}
    )
    thread.start()
    deadline = time.time() + 5
    while ledger.desired(target())[0] is not True and time.time() < deadline:  # type: ignore[index]
        time.sleep(0.02)
    time.sleep(0.1)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert ledger.desired(target())[0] is True  # type: ignore[index]
    assert sweeps


def test_load_sweeper_is_optional() -> None:
    sweep = scheduler.load_sweeper()
    assert sweep is None or callable(sweep)


def test_a_claim_abandoned_while_the_scheduler_runs_fires_within_seconds(
    timers: Timers, ledger: Ledger, r: redis.Redis, keys: Keys
) -> None:
    now = clock.now_ms()
    accept([change(False, now - 1_000, until=now + 2_000)], timers=timers)
    [tid] = r.zrange(timers.due_key, 0, -1)
    stop = threading.Event()
    runner = threading.Thread(target=scheduler.loop, args=(stop,), kwargs={"timers": timers, "sweep_interval_s": 3600})
    runner.start()
    try:
        time.sleep(0.3)  # the loop runs (its start-up recovery is behind it)
        # A tick claimed the timer just now and failed before recording it: it sits in processing.
        r.zrem(timers.due_key, tid)
        r.zadd(timers.processing_key, {tid: clock.now_ms()})
        deadline = time.monotonic() + scheduler.STALE_CLAIM_MS / 1000 + 5
        while ledger.desired(target())[0] is not True and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.1)
        assert ledger.desired(target())[0] is True  # type: ignore[index]
        assert timers.counts() == {"due": 0, "processing": 0}
    finally:
        stop.set()
        runner.join(timeout=10)
