"""The drift re-pend script against a real Redis: only settled targets, only with no write since
the publish, a new key for each repair, and a cap on repairs that follow each other closely."""

from __future__ import annotations

from typing import Any

from config.redis import Keys
from workers.changes import Change, Store, Target
from workers.ledger import Ledger

STORE = Store(brand_id=5297, branch_id=1293)
TARGET = Target(business_id=398, store=STORE, level="item", entity_id=101, field="enabled")


def _settled(ledger: Ledger) -> str:
    (version,) = ledger.record([Change(id="c1", target=TARGET, value=False, occurred_at_ms=1_000)])
    assert version is not None
    ledger.mark_applied(398, [(TARGET.key(), version)])
    return version


def _repend(
    ledger: Ledger, keys: Keys, version: str, *, max_repairs: int = 3, window_ms: int = 60_000, **read: Any
) -> Any:
    """The drift re-pend of TARGET at ``version``; ``read`` passes what the read-back knew (stores, generation)."""
    return ledger.repend_drift(
        398,
        [(TARGET.key(), version)],
        max_repairs=max_repairs,
        window_ms=window_ms,
        flag_ttl_ms=5_000,
        publish_state_key=keys.business(398, "publish"),
        **read,
    )


def test_a_drifted_settled_target_is_pended_again_under_a_new_key(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    version = _settled(ledger)
    r.delete(keys.flush_scheduled(398))
    repair = _repend(ledger, keys, version)
    assert repair.repended == (TARGET.key(),) and repair.send_flush
    (row,) = ledger.pending(398)
    assert row.version == version and row.nonce == 1  # same version, new idempotency key


def test_nothing_is_repaired_while_a_write_since_the_publish_waits_for_its_publish(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    version = _settled(ledger)
    r.hset(keys.business(398, "publish"), mapping={"gen": 1})
    r.sadd(keys.publish_stores(398), "1615:1294")  # the write that landed was at another store
    repair = _repend(ledger, keys, version, stores_read=[STORE.key()])
    assert repair.busy
    assert ledger.pending(398) == []
    # The store read joins the pending publish, so the read-back after it reads the store again.
    assert r.smembers(keys.publish_stores(398)) == {"1615:1294", STORE.key()}


def test_a_target_changed_since_the_reading_is_left_alone(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    version = _settled(ledger)
    ledger.record([Change(id="c2", target=TARGET, value=True, occurred_at_ms=2_000)])
    repair = _repend(ledger, keys, version)
    assert repair.repended == () and repair.persistent == ()
    assert r.hget(keys.business(398, "nonce"), TARGET.key()) is None


def test_repairs_past_the_cap_make_the_target_persistent_once(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    version = _settled(ledger)
    for _ in range(2):
        assert _repend(ledger, keys, version, max_repairs=2).repended == (TARGET.key(),)
        ledger.mark_applied(398, [(TARGET.key(), version)])
    repair = _repend(ledger, keys, version, max_repairs=2)
    assert repair.persistent == (TARGET.key(),) and repair.repended == ()
    assert ledger.drift_repairs(398) == {}


def test_repairs_far_apart_do_not_add_up(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    version = _settled(ledger)
    for _ in range(4):
        assert _repend(ledger, keys, version, max_repairs=1, window_ms=-1).repended == (TARGET.key(),)
        ledger.mark_applied(398, [(TARGET.key(), version)])
    assert ledger.drift_repairs(398) == {TARGET.key(): 1}


def test_periodic_read_backs_keep_their_spread_and_follow_a_new_interval(r: Any, keys: Keys) -> None:
    from config.redis import shard_of
    from config.settings import Settings
    from workers.runtime import Runtime
    from workers.sweeper import claim_due_reconciles

    rt = Runtime(Settings(reconcile_interval_s=100.0))  # type: ignore[call-arg]
    rt.__dict__["redis"] = r
    shard = shard_of(1)
    businesses = [b for b in range(1, 10_000) if shard_of(b) == shard][:40]  # one shard's index
    t0 = 1_000_000_000
    assert claim_due_reconciles(rt, shard, businesses, t0) == []  # each waits for its spread first time
    due = dict(r.zrange(keys.shard(shard, "reconcile", "due"), 0, -1, withscores=True))
    assert len({int(v) for v in due.values()}) > 30 and all(t0 <= v < t0 + 100_000 for v in due.values())
    # The scheduler was down for 10 intervals: every business is claimed once, and keeps its phase.
    claimed = claim_due_reconciles(rt, shard, businesses, t0 + 1_000_000)
    assert sorted(claimed) == sorted(businesses)
    after = dict(r.zrange(keys.shard(shard, "reconcile", "due"), 0, -1, withscores=True))
    now = t0 + 1_000_000
    for b in due:  # next time: after now, within one interval, at the business's own phase
        assert now < after[b] <= now + 100_000 and (after[b] - due[b]) % 100_000 == 0, b
    assert claim_due_reconciles(rt, shard, businesses, t0 + 1_000_000) == []
    # A shorter interval takes effect at once: the index is rebuilt.
    rt = Runtime(Settings(reconcile_interval_s=10.0))  # type: ignore[call-arg]
    rt.__dict__["redis"] = r
    claim_due_reconciles(rt, shard, businesses, t0 + 1_000_000)
    rebuilt = dict(r.zrange(keys.shard(shard, "reconcile", "due"), 0, -1, withscores=True))
    assert all(t0 + 1_000_000 <= v < t0 + 1_010_000 + 1 for v in rebuilt.values())


def test_a_reading_that_a_write_and_its_publish_overtook_is_stale_and_repairs_nothing(r: Any, keys: Keys) -> None:
    from workers.scripts import script

    ledger = Ledger(r, keys)
    version = _settled(ledger)
    carry = [keys.business(398, "publish"), keys.publish_stores(398), keys.publish_generation(398)]
    generation = int(script(r, "publish_carry")(keys=carry, args=[STORE.key()]))
    assert generation >= 0, "no publish pending: read now"
    # While klikit's menu is being read, a write lands and its publish completes (state cleared).
    r.incr(keys.publish_generation(398))
    repair = _repend(ledger, keys, version, stores_read=[STORE.key()], write_generation=generation)
    assert repair.stale and repair.repended == ()
    assert ledger.pending(398) == []


def test_a_business_first_seen_after_the_seeding_gets_its_periodic_read_back_without_waiting_for_the_next(
    r: Any, keys: Keys
) -> None:
    """Found by the demo: a business whose first change came after the scheduler seeded the read-back
    index waited up to a minute (the next seeding) for its first periodic read-back."""
    from config.settings import Settings
    from workers.runtime import Runtime
    from workers.sweeper import _shards_to_seed, due_reconciles

    rt = Runtime(Settings(reconcile_interval_s=4.0))  # type: ignore[call-arg]
    rt.__dict__["redis"] = r
    now = 1_000_000_000
    assert due_reconciles(rt, now) == []  # the scheduler starts on an empty ledger
    _settled(rt.ledger)  # business 398 sends its first change
    due_reconciles(rt, now + 1_000)
    first = r.zscore(keys.shard(keys.shard_of(398), "reconcile", "due"), "398")
    assert first is not None and now + 1_000 <= first < now + 5_000
    assert due_reconciles(rt, now + 5_000) == [398]
    assert _shards_to_seed(rt) == [], "a known business costs the pass nothing"
