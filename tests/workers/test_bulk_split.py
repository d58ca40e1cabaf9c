"""One bad id never takes a good one down with it: a refused bulk write is split until the bad targets
are isolated, and only they are dead-lettered (real Redis, a real worker, the sandbox over HTTP)."""

from __future__ import annotations

from typing import Any

from pipeline_support import BUSINESS, STORES, item_change

from workers.flush import split_call
from workers.ledger import PendingRow
from workers.planner import PlanContext, plan_calls


def test_a_bulk_enable_with_unknown_ids_dead_letters_only_them(pipeline: Any) -> None:
    store = STORES[0]
    at = 1_795_200_000_000
    good = [101, 102, 103, 104, 105, 106]
    bad = [555_001, 555_002]
    pipeline.submit([item_change(i, False, at, store=store) for i in [*good, *bad]])
    pipeline.wait_settled()
    for item in good:
        assert pipeline.published_item_enabled(store, item) is False, item
    records = pipeline.rt.dead_letters.list(BUSINESS)
    dead_targets = sorted(key for record in records for key, _ in record.targets)
    assert dead_targets == sorted(f"398|{store.key()}|item|{i}|enabled" for i in bad)
    assert all(record.error_code == "resource_not_found" and record.http_status == 404 for record in records)
    enables = [c for c in pipeline.writes() if c["path"].endswith("/items/enable")]
    # 1 refused bulk write, then halves: well under one call per target.
    assert len(enables) <= 1 + 2 * len(bad) * 3, len(enables)


def test_split_call_plans_each_half_of_the_targets() -> None:
    rows = [
        PendingRow(
            target=item_change(i, False, 1_000, store=STORES[0]).target,
            value=False,
            version=f"{i:015d}.1",
            change_id=f"c{i}",
        )
        for i in range(101, 111)
    ]
    ctx = PlanContext(business_id=BUSINESS)
    [call] = plan_calls(rows, ctx)
    halves = split_call(call, {r.target.key(): r for r in rows}, ctx)
    assert [len(h.targets) for h in halves] == [5, 5]
    assert sorted(k for h in halves for k, _ in h.targets) == sorted(k for k, _ in call.targets)
    assert len({h.idempotency_key for h in halves} | {call.idempotency_key}) == 3
