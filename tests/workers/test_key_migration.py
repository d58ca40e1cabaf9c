"""``migrate-keys`` moves a legacy deployment's state to the sharded layout, and nothing is lost:
the migrated ledger keeps latest-wins and the sweeper's indexes find what was pending."""

from __future__ import annotations

from typing import Any

from config.redis import Keys
from workers.changes import Change, Store, Target
from workers.key_migration import LegacyLayout, migrate_keys, plan_key, refuse_legacy_layout
from workers.ledger import Ledger

STORE = Store(brand_id=1, branch_id=1)


def test_each_legacy_key_has_one_place_and_current_keys_stay(keys: Keys) -> None:
    p = keys.prefix
    assert plan_key(keys, f"{p}:desired:398").target == keys.business(398, "desired")  # type: ignore[union-attr]
    assert plan_key(keys, f"{p}:flush:scheduled:7").target == keys.flush_scheduled(7)  # type: ignore[union-attr]
    assert plan_key(keys, f"{p}:dlq:item:dl-1").target == keys.group("dlq", "item:dl-1")  # type: ignore[union-attr]
    assert plan_key(keys, f"{p}:seq").kind == "split"  # type: ignore[union-attr]
    assert plan_key(keys, keys.business(398, "desired")) is None
    assert plan_key(keys, f"{p}:dedupe:pos:e1") is None
    assert plan_key(keys, "someone-else:desired:398") is None


def test_a_legacy_ledger_migrates_and_keeps_its_versions_and_pending_work(r: Any, keys: Keys) -> None:
    p = keys.prefix
    target = Target(business_id=398, store=STORE, level="item", entity_id=1, field="enabled")
    version = "000000000002000.000000000041"
    r.hset(f"{p}:desired:398", target.key(), "false")
    r.hset(f"{p}:dver:398", target.key(), version)
    r.zadd(f"{p}:pending:398", {target.key(): 1_000})
    r.set(f"{p}:seq", 41)
    r.sadd(f"{p}:businesses", 398)
    r.zadd(f"{p}:attention:pending", {"398": 1_000})
    assert migrate_keys(r, keys, apply=False) == {
        "attention:pending": 1, "businesses": 1, "desired": 1, "dver": 1, "pending": 1, "seq": 1,
    }  # fmt: skip
    assert r.exists(f"{p}:desired:398"), "a dry run moves nothing"
    migrate_keys(r, keys, apply=True)
    assert migrate_keys(r, keys, apply=False) == {}
    ledger = Ledger(r, keys)
    assert ledger.businesses() == [398]
    (row,) = ledger.pending(398)
    assert (row.value, row.version) == (False, version)
    assert r.zscore(keys.attention_of(398, "pending"), "398") == 1_000
    # A change at the same event time still orders after the migrated version (the counter carried on).
    change = Change(id="c-new", target=target, value=True, occurred_at_ms=2_000)
    assert ledger.record([change]) == ["000000000002000.000000000042"]


def test_a_process_refuses_to_start_on_legacy_keys_until_they_are_migrated(r: Any, keys: Keys, redis_url: str) -> None:
    import dramatiq
    import pytest
    from dramatiq.brokers.redis import RedisBroker

    from workers.middleware import LayoutCheck, StateUnusable

    p = keys.prefix
    refuse_legacy_layout(r, keys)  # a fresh deployment starts
    r.set(f"{p}:seq", 41)
    r.sadd(f"{p}:businesses", 398)
    with pytest.raises(LegacyLayout, match="migrate-keys") as refused:
        refuse_legacy_layout(r, keys)
    assert f"{p}:seq" in str(refused.value) and f"{p}:businesses" in str(refused.value)
    # A worker checks before it takes a message: it does not boot.
    broker = RedisBroker(
        url=redis_url, namespace=f"{p}-dramatiq", middleware=[LayoutCheck(lambda: refuse_legacy_layout(r, keys))]
    )
    worker = dramatiq.Worker(broker, worker_threads=1)
    try:
        with pytest.raises(StateUnusable, match="migrate-keys"):
            worker.start()
    finally:
        worker.stop()
        broker.close()
    migrate_keys(r, keys, apply=True)
    refuse_legacy_layout(r, keys)
