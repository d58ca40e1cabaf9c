"""Poison never takes the innocent with it: one bad timer, one bad stream entry, one bad slot."""

from __future__ import annotations

import json
from typing import Any

from config.redis import Keys
from producers.intake import accept
from producers.scheduler import run_due
from producers.timers import Timers
from workers.changes import Change, Store, Target
from workers.deadletters import DeadLetterStore
from workers.ledger import Ledger
from workers.runtime import reset_runtime

BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)
T0 = 1_790_000_000_000


def _target(entity: int) -> Target:
    return Target(business_id=BUSINESS, store=STORE, level="item", entity_id=entity, field="enabled")


def test_a_poisoned_timer_is_dead_lettered_alone_and_the_good_one_fires(r: Any, keys: Keys) -> None:
    reset_runtime()
    timers = Timers(r, keys)
    accept([Change(id="good", target=_target(101), value=False, occurred_at_ms=T0, until_ms=T0 + 10)], timers=timers)
    # A timer stored with an impossible time (before 1970), as an older version could store it.
    bad_id = f"{_target(102).key()}@bad"
    bad = {"change_id": "bad", "target": _target(102).key(), "until_ms": -86_400_000, "expect_version": "x"}
    r.hset(keys.group("timers", "data"), bad_id, json.dumps(bad))
    r.zadd(keys.group("timers", "due"), {bad_id: T0})
    result = run_due(T0 + 10, timers=timers)
    assert (result.fired, result.dropped) == (1, 1)
    assert Ledger(r, keys).desired(_target(101))[0] is True  # type: ignore[index]
    (record,) = DeadLetterStore(r, keys).list(BUSINESS)
    assert record.error_code == "timer_invalid" and record.kind == "timer" and "occurred_at_ms" in record.reason
    assert timers.counts() == {"due": 0, "processing": 0}
    assert run_due(T0 + 20, timers=timers).dropped == 0, "the poisoned timer does not come back every cycle"


def _api(client: Any, body: dict[str, Any]) -> Any:
    from hostile_support import API_TOKEN

    return client.post("/v1/changes", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"})


def test_until_before_the_event_or_beyond_the_cap_is_refused_naming_until(client: Any, r: Any, keys: Keys) -> None:
    from datetime import UTC, datetime, timedelta

    from hostile_support import canonical

    now = datetime.now(UTC)
    for until in (now - timedelta(minutes=1), now + timedelta(days=91), datetime(1969, 12, 31, tzinfo=UTC)):
        resp = _api(client, canonical(occurred_at=now.isoformat(), until=until.isoformat()))
        assert resp.status_code == 400, resp.text
        assert "until" in resp.text
    assert Ledger(r, keys).pending_count(BUSINESS) == 0
    ok = _api(client, canonical(occurred_at=now.isoformat(), until=(now + timedelta(days=89)).isoformat()))
    assert ok.status_code == 202, ok.text


def test_a_schedule_klikit_would_refuse_is_refused_at_intake_naming_the_slot(client: Any, r: Any, keys: Keys) -> None:
    from hostile_support import canonical

    def schedule(*slots: tuple[int, int]) -> dict[str, Any]:
        day = {"disabled": False, "slots": [{"startTime": a, "endTime": b} for a, b in slots]}
        return canonical(kind="schedule", level="section", entity_ids=[6826], enabled=None, available_times={"1": day})

    bad = {
        "minutes past 59": schedule((1099, 1200)),
        "hour 24": schedule((2400 - 1, 2460)),
        "start after end": schedule((1500, 1100)),
        "overlap": schedule((1100, 1400), (1300, 1500)),
        "25 slots": schedule(*[(h * 100, h * 100 + 30) for h in range(24)], (2340, 2350)),
    }
    for what, body in bad.items():
        resp = _api(client, body)
        assert resp.status_code == 400, (what, resp.text)
        assert "available_times" in resp.text or "slots" in resp.text, (what, resp.text)
    assert Ledger(r, keys).pending_count(BUSINESS) == 0
    ok = _api(client, schedule((1100, 1400), (1400, 1500)))
    assert ok.status_code == 202, ok.text


def test_bad_good_bad_inventory_entries_apply_the_good_one_and_keep_running(r: Any, keys: Keys) -> None:
    import time

    from config.settings import Settings
    from producers.inventory import InventoryConsumer
    from producers.mapping import Mappings, parse_csv
    from producers.review import list_review

    reset_runtime()
    Mappings(r, keys).import_rows(
        parse_csv(
            f"kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\nentity,sku,FRIES,{BUSINESS},item,104,,\n"
        )
    )
    consumer = InventoryConsumer(r, keys, Settings(), name="c1", min_idle_ms=50)  # type: ignore[call-arg]
    consumer.ensure_group()
    store = {"brand_id": STORE.brand_id, "branch_id": STORE.branch_id}
    now = int(time.time() * 1000)
    entries = [
        {"sku": "FRIES", **store, "quantity": 0, "ts": "1969-12-31T23:00:00Z"},  # before 1970
        {"sku": "FRIES", **store, "quantity": 0, "ts": now},
        {"sku": "FRIES", **store, "quantity": 0, "ts": "not a time"},
    ]
    ids = [r.xadd(consumer.stream, {k: str(v) for k, v in e.items()}) for e in entries]
    assert consumer.read_new() == 3
    assert Ledger(r, keys).desired(_target(104))[0] is False  # type: ignore[index]
    assert int(r.xpending(consumer.stream, consumer.group)["pending"]) == 0
    invalid = {fields["event_id"] for _, fields in list_review(r, keys, kind="invalid")}
    assert invalid == {ids[0], ids[2]}
    r.xadd(
        consumer.stream, {"sku": "FRIES", **{k: str(v) for k, v in store.items()}, "quantity": "5", "ts": str(now + 1)}
    )
    assert consumer.read_new() == 1, "the consumer keeps running"
    assert Ledger(r, keys).desired(_target(104))[0] is True  # type: ignore[index]
