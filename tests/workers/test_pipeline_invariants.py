"""End to end, one invariant of design.md section 3 per test.

Real Redis, real Dramatiq workers (in-process ``Worker``), the klikit sandbox over HTTP.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from pipeline_support import BUSINESS, STORES, item_change, wait_for

from workers.changes import Change, Target


def _applied_twice(writes: list[dict[str, Any]]) -> list[str]:
    applied = Counter(c["idempotency_key"] for c in writes if c["applied"])
    return [k for k, n in applied.items() if n > 1]


def test_i2_out_of_order_and_duplicate_changes_end_at_the_newest_value(pipeline: Any) -> None:
    store = STORES[0]
    base = 1_795_000_000_000
    changes = []
    for item in range(101, 111):
        for step in range(6):
            changes.append(item_change(item, enabled=step % 2 == 1, at_ms=base + step, store=store))
    random.Random(7).shuffle(changes)
    changes += changes[:20]  # redelivered duplicates
    result = pipeline.submit(changes)
    assert result.accepted + result.superseded + result.duplicate == len(changes)
    assert result.duplicate >= 1, "a redelivery of the stored change is a duplicate"
    pipeline.wait_settled()
    for item in range(101, 111):
        # the newest change (step 5) enables
        assert pipeline.published_item_enabled(store, item) is True
        target = Target(business_id=BUSINESS, store=store, level="item", entity_id=item, field="enabled")
        assert pipeline.rt.ledger.applied_version(target) == pipeline.rt.ledger.desired(target)[1]
    assert _applied_twice(pipeline.writes()) == []


def test_i1_i3_thirty_percent_502s_converge_with_no_write_applied_twice(make_pipeline: Any) -> None:
    # In-call retries off: every 502 goes through the workers' own retry path.
    p = make_pipeline(klikit_incall_attempts=1)
    p.sandbox.set_faults(downstream_rate=0.3, seed=11)
    base = 1_795_000_100_000
    changes = [
        item_change(200 + i % 40, enabled=(i // 40) % 2 == 0, at_ms=base + i, store=STORES[i % 3]) for i in range(240)
    ]
    # Visibility changes plan one call per item and store: enough calls for the faults to bite many times.
    # Each sets two channels: shown on klikit (1), shown or hidden on GrabFood (6).
    for i in range(30):
        for provider, visible in ((1, True), (6, i % 2 == 0)):
            target = Target(
                business_id=BUSINESS,
                store=STORES[i % 3],
                level="item",
                entity_id=250 + i,
                field="visibilities",
                provider=provider,
            )
            changes.append(Change(id=f"v{i}", target=target, value=visible, occurred_at_ms=base + i))
    p.submit(changes)
    p.wait_settled(timeout=60)
    writes = p.writes()
    assert sum(c["fault"] == "downstream" for c in writes) >= 3, "the fault injection did not fire"
    assert _applied_twice(writes) == []
    assert p.rt.dead_letters.count() == 0
    newest: dict[tuple[Any, int, str, int | None], Any] = {}
    for c in sorted(changes, key=lambda c: c.occurred_at_ms):
        newest[(c.target.store, c.target.entity_id, c.target.field, c.target.provider)] = c.value
    state = p.sandbox.state(BUSINESS)["effective_published"]
    for (store, item, field, provider), value in newest.items():
        row = state[store.key()]["item"][str(item)]
        if field == "enabled":
            assert row["enabled"] is value
        else:
            assert row["visibilities"].get(str(provider), False) is value  # absent from the map = hidden


def test_i3_disable_enable_disable_applies_three_times(pipeline: Any) -> None:
    base = 1_795_000_200_000
    for step, value in enumerate([False, True, False]):
        pipeline.submit([item_change(150, enabled=value, at_ms=base + step)])
        pipeline.wait_settled()
    applied = [c for c in pipeline.writes() if c["applied"]]
    assert [c["body"]["isEnabled"] for c in applied] == [False, True, False]
    assert len({c["idempotency_key"] for c in applied}) == 3


def test_i4_a_burst_of_500_changes_gives_one_publish(pipeline: Any) -> None:
    base = 1_795_000_300_000
    changes = [item_change(300 + i % 100, enabled=i % 2 == 0, at_ms=base + i, store=STORES[i % 3]) for i in range(500)]
    for start in range(0, 500, 50):
        pipeline.submit(changes[start : start + 50])
    pipeline.wait_settled()
    assert len(pipeline.publishes()) == 1
    last_write = max(c["ts"] for c in pipeline.writes() if c["applied"])
    assert pipeline.publishes()[0]["ts"] >= last_write
    published_stores = {(s["brandID"], s["branchID"]) for s in pipeline.publishes()[0]["body"]["stores"]}
    assert published_stores == {(s.brand_id, s.branch_id) for s in STORES}


def test_i4_an_edit_during_the_publish_call_gives_exactly_one_more(pipeline: Any, monkeypatch: Any) -> None:
    client = pipeline.rt.client(BUSINESS)
    original = client.send
    state = {"published": 0}

    def send(operation: str, **kw: Any) -> Any:
        if operation == "publish_menu" and state["published"] == 0:
            state["published"] += 1
            pipeline.submit([item_change(381, enabled=False, at_ms=1_795_000_400_100)])
            wait_for(lambda: pipeline.rt.ledger.pending_count(BUSINESS) == 0, what="the edit to be written")
        return original(operation, **kw)

    monkeypatch.setattr(client, "send", send)
    pipeline.submit([item_change(380, enabled=False, at_ms=1_795_000_400_000)])
    pipeline.wait_settled()
    assert len(pipeline.publishes()) == 2
    assert pipeline.published_item_enabled(STORES[0], 381) is False


def test_i5_a_409_is_dead_lettered_at_once_with_its_request_id(pipeline: Any) -> None:
    pipeline.sandbox.script(
        "PATCH", "/v1/partner/menus/items/enable", [{"status": 409, "code": "state_idempotency_conflict"}]
    )
    pipeline.submit([item_change(390, enabled=False, at_ms=1_795_000_500_000)])
    wait_for(lambda: pipeline.rt.dead_letters.count() == 1, what="a dead letter")
    pipeline.wait_settled()
    [record] = pipeline.rt.dead_letters.list()
    assert record.error_code == "state_idempotency_conflict"
    assert record.http_status == 409
    assert record.request_id and record.idempotency_key and record.body["ids"] == [390]
    assert record.attempts == 1
    calls = [c for c in pipeline.writes() if c["idempotency_key"] == record.idempotency_key]
    assert len(calls) == 1, "a 409 must never be retried"


def test_i5_a_429_with_retry_after_is_honoured_and_spends_no_retry_budget(make_pipeline: Any) -> None:
    # A retry budget so small that one transient failure would dead-letter the write at once...
    p = make_pipeline(retry_max_age_s=0.0, klikit_incall_attempts=1)
    p.sandbox.script(
        "PATCH",
        "/v1/partner/menus/items/enable",
        [{"status": 429, "code": "rate_limit_exceeded", "retry_after": 1}] * 2,
    )
    p.submit([item_change(395, enabled=False, at_ms=1_795_000_600_000)])
    p.wait_settled(timeout=20)
    # ...yet two 429s are waited out and the write lands.
    assert p.rt.dead_letters.count() == 0
    attempts = [c for c in p.writes() if c["body"]["ids"] == [395]]
    assert [c["status"] for c in attempts] == [429, 429, 200]
    assert attempts[1]["ts"] - attempts[0]["ts"] >= 0.95
    assert attempts[2]["ts"] - attempts[1]["ts"] >= 0.95
