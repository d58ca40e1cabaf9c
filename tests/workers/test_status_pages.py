"""Pages of the status report: the pure cursor (property-tested) and pages read from a real Redis."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from workers.changes import Change, Store, Target
from workers.runtime import Runtime, runtime
from workers.status import business_status, business_statuses, collect, page_of


@given(st.sets(st.integers(min_value=1, max_value=10_000), max_size=60), st.integers(min_value=1, max_value=25))
def test_following_next_after_visits_every_business_once_in_order(ids: set[int], limit: int) -> None:
    seen: list[int] = []
    after = None
    for _ in range(len(ids) + 2):
        page = page_of(ids, after, limit)
        assert page.total == len(ids)
        assert len(page.ids) <= limit
        seen += page.ids
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(ids)


@given(st.sets(st.integers(min_value=1, max_value=500), min_size=6, max_size=40), st.integers(0, 500))
def test_a_business_recorded_between_two_pages_never_repeats_one_already_seen(ids: set[int], added: int) -> None:
    first = page_of(ids, None, 5)
    assert first.next_after is not None
    second = page_of(ids | {added}, first.next_after, 5)
    assert not set(second.ids) & set(first.ids)
    assert second.ids == sorted(b for b in ids | {added} if b > first.next_after)[:5]


def test_page_of_without_a_limit_is_every_business() -> None:
    page = page_of([5, 1, 3, 3], None, None)
    assert page.ids == [1, 3, 5] and page.total == 3 and page.next_after is None


def _record(rt: Runtime, business_id: int, entity: int, value: bool = False) -> None:
    target = Target(
        business_id=business_id, store=Store(brand_id=1, branch_id=2), level="item", entity_id=entity, field="enabled"
    )
    rt.ledger.record(
        [Change(id=f"c-{business_id}-{entity}", target=target, value=value, occurred_at_ms=1_795_000_000_000 + entity)]
    )


def test_status_pages_cover_every_business_and_agree_with_one_business_reads(r: Any) -> None:
    rt = runtime()
    ids = [7001, 7002, 7003, 7004, 7005, 7006, 7007]
    for i, b in enumerate(ids):
        for entity in range(i + 1):  # business i has i + 1 pending targets
            _record(rt, b, 100 + entity)
    rt.redis.set(rt.keys.business(7003, "credential", "blocked"), "auth_revoked")
    shown: list[int] = []
    after = None
    while True:
        report = collect(rt, after=after, limit=3)
        assert report.businesses_total == len(ids)
        assert len(report.businesses) <= 3
        shown += [b.business_id for b in report.businesses]
        for b in report.businesses:
            assert b.pending == ids.index(b.business_id) + 1
        if report.next_after is None:
            break
        after = report.next_after
    assert shown == ids
    now = 1_800_000_000_000
    batch = business_statuses(rt, ids, now)
    assert batch == [business_status(rt, b, now) for b in ids]
    assert batch[2].credential == "blocked: auth_revoked" and batch[0].credential == "ok"
    assert collect(rt, limit=None).next_after is None and len(collect(rt, limit=None).businesses) == len(ids)
