"""klikit outages: nothing ages out while klikit is down, probes stay few, the newest values land after.

Real Redis, an in-process Dramatiq worker, the sandbox answering every write with 502 for longer
than the retry age (``retry_max_age_s``), then healthy again.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline_support import BUSINESS, STORES, Pipeline, item_change, wait_for

from workers.breaker import Breaker
from workers.changes import Change, Target
from workers.deadletters import DeadLetter
from workers.outage import repend_transient_dead_letters
from workers.status import collect

OUTAGE = {
    "retry_max_age_s": 1.0,
    "breaker_threshold": 3,
    "breaker_open_ms": 200,
    "breaker_max_open_ms": 400,
    "klikit_incall_attempts": 2,
}


def _visibility(entity: int, flag: bool, at_ms: int) -> Change:
    t = Target(business_id=BUSINESS, store=STORES[0], level="item", entity_id=entity, field="visibilities")
    return Change(id=f"vis-{entity}-{at_ms}", target=t, value={"1": flag, "6": True}, occurred_at_ms=at_ms)


def _breaker(p: Pipeline) -> Breaker:
    s = p.settings
    return Breaker(p.rt.redis, p.rt.keys, BUSINESS, s.breaker_threshold, s.breaker_open_ms, s.breaker_max_open_ms)


def test_an_outage_longer_than_the_retry_age_ends_with_the_newest_values_and_no_operator(
    make_pipeline: Any,
) -> None:
    p: Pipeline = make_pipeline(**OUTAGE)
    outage_s = 4.0  # four times the retry age
    p.sandbox.set_faults(downstream_rate=1.0, writes_only=True)
    started = time.time()
    base = 1_795_003_000_000
    # Ten visibility writes (one call each) and ten availability targets, each changed three times.
    for step in range(3):
        changes = [_visibility(340 + i, step % 2 == 0, base + step * 10 + i) for i in range(10)]
        changes += [item_change(360 + i, step % 2 == 1, base + step * 10 + i, store=STORES[1]) for i in range(10)]
        p.submit(changes)
        time.sleep(outage_s / 3)
    assert _breaker(p).outage_since_ms() is not None, "the breaker never saw the outage"
    [status] = collect(p.rt, BUSINESS).businesses
    assert status.klikit_outage_ms is not None and status.klikit_outage_ms > 1_000
    p.sandbox.clear_faults()
    recovered = time.time()
    p.wait_settled(timeout=30)
    assert p.rt.dead_letters.count() == 0, [d.error_code for d in p.rt.dead_letters.list()]
    during = [w for w in p.writes() if started <= w["ts"] < recovered]
    # Probes, not a call per pending write per retry: the 20 targets failing for 4 s with 50-400 ms
    # backoffs and 2 in-call attempts would take hundreds of calls.
    assert len(during) <= 40, len(during)
    after = [w for w in p.writes() if w["ts"] >= recovered]
    # Coalesced: only the newest value of each target is written (one call per visibility target,
    # the availability targets in bulk).
    assert all(w["applied"] for w in after)
    assert len(after) <= 10 + 2, len(after)
    state = p.sandbox.state(BUSINESS)["effective_published"]
    for i in range(10):
        assert state[STORES[0].key()]["item"][str(340 + i)]["visibilities"]["1"] is True  # step 2
        assert state[STORES[1].key()]["item"][str(360 + i)]["enabled"] is False  # step 2
    assert _breaker(p).outage_since_ms() is None
    assert collect(p.rt, BUSINESS).businesses[0].klikit_outage_ms is None


def test_a_permanent_error_during_an_outage_is_dead_lettered_at_once_and_stays(make_pipeline: Any) -> None:
    p: Pipeline = make_pipeline(**OUTAGE)
    p.sandbox.set_faults(downstream_rate=1.0, writes_only=True)
    p.submit([_visibility(370 + i, False, 1_795_003_100_000 + i) for i in range(3)])
    wait_for(lambda: _breaker(p).outage_since_ms() is not None, timeout=20, what="the outage to be seen")
    p.sandbox.script("PATCH", "/v1/partner/menus/items/enable", [{"status": 400, "code": "request_invalid"}])
    p.submit([item_change(375, False, 1_795_003_100_100, store=STORES[0])])
    time.sleep(1.5)  # longer than the retry age, still in the outage
    assert p.rt.dead_letters.count() in (0, 1)
    p.sandbox.clear_faults()
    p.wait_settled(timeout=30)
    [record] = p.rt.dead_letters.list()
    assert record.error_code == "request_invalid" and record.attempts == 1
    assert [c["status"] for c in p.writes() if (c["body"] or {}).get("ids") == [375]] == [400]
    # The transient ones all landed; the permanent one stays for an operator.
    state = p.sandbox.state(BUSINESS)["effective_published"]
    assert all(state[STORES[0].key()]["item"][str(370 + i)]["visibilities"]["1"] is False for i in range(3))


def test_transient_dead_letters_come_back_when_the_business_writes_again(make_pipeline: Any) -> None:
    p: Pipeline = make_pipeline(**OUTAGE)
    # A dead letter of an older run: a transient failure that outlived the retry age back then.
    old = item_change(380, False, 1_795_003_200_000, store=STORES[0])
    [version] = p.rt.ledger.record([old])
    assert version is not None
    p.rt.redis.delete(p.rt.keys.flush_scheduled(BUSINESS))
    record = p.rt.dead_letters.add(
        DeadLetter(business_id=BUSINESS, targets=[(old.target.key(), version)], error_code="downstream_unavailable")
    )
    p.rt.ledger.mark_dead(BUSINESS, [(old.target.key(), version)], record.id)
    permanent = p.rt.dead_letters.add(DeadLetter(business_id=BUSINESS, error_code="request_invalid"))
    assert p.rt.ledger.pending_count(BUSINESS) == 0
    # Any successful write of the business brings it back, with no operator.
    p.submit([item_change(381, False, 1_795_003_200_100, store=STORES[1])])
    p.wait_settled(timeout=30)
    assert p.published_item_enabled(STORES[0], 380) is False
    assert [d.id for d in p.rt.dead_letters.list()] == [permanent.id]
    replayed = p.rt.dead_letters.get(record.id)
    assert replayed is not None and replayed.replayed_at_ms
    # Nothing left to do: a second look is one read.
    assert repend_transient_dead_letters(p.rt, BUSINESS, lambda b, d: None) == 0
