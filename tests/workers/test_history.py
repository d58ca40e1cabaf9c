"""The change history: written by the record script in the same step, outcomes appended, read with filters."""

from __future__ import annotations

import time
from typing import Any

import pytest

from config.redis import Keys
from workers import history
from workers.changes import Change, Store, Target
from workers.ledger import Ledger

BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)


def _change(entity: int, enabled: bool, at_ms: int, cid: str = "") -> Change:
    target = Target(business_id=BUSINESS, store=STORE, level="item", entity_id=entity, field="enabled")
    return Change(id=cid or f"c-{entity}-{at_ms}", target=target, value=enabled, occurred_at_ms=at_ms)


def test_record_writes_one_entry_per_change_with_its_outcome(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    now = int(time.time() * 1000)
    first = _change(101, False, now - 1000, "pos-1")
    older = _change(101, True, now - 5000, "pos-0")
    versions = ledger.record([first, older, first], source="api", actor="pos-bridge", received_ms=now, history_max=1000)
    assert versions[0] is not None and versions[1] is None and versions[2] is None
    entries, cursor = history.read_history(r, keys, BUSINESS)
    assert cursor is None
    assert [e.outcome for e in entries] == ["duplicate", "superseded", "recorded"]
    recorded = entries[-1]
    assert (recorded.target, recorded.value, recorded.source, recorded.actor) == (
        first.target.key(),
        "false",
        "api",
        "pos-bridge",
    )
    assert (recorded.change_id, recorded.event_ms, recorded.received_ms, recorded.version) == (
        "pos-1",
        first.occurred_at_ms,
        now,
        versions[0],
    )


def test_history_off_writes_nothing_and_the_stream_is_capped(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    now = int(time.time() * 1000)
    ledger.record([_change(101, False, now)])
    assert history.history_length(r, keys, BUSINESS) == 0
    ledger.record([_change(200 + i, False, now) for i in range(600)], history_max=100, source="api")
    assert history.history_length(r, keys, BUSINESS) < 300  # MAXLEN ~ 100 trims whole nodes


def test_filters_pages_and_bytes_per_entry(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    now = int(time.time() * 1000)
    changes = [_change(100 + (i % 10), bool(i % 2), now - 10_000 + i, f"evt-{i}") for i in range(1000)]
    for start in range(0, 1000, 100):
        ledger.record(changes[start : start + 100], source="square", history_max=100_000)
    history.append_outcomes(
        r,
        keys,
        BUSINESS,
        [(changes[-1].target.key(), "v")],
        "applied",
        max_entries=100_000,
        source="flush",
        request_id="req_1",
        idempotency_key="ms1-abc",
    )
    hits, _ = history.read_history(r, keys, BUSINESS, target="item:109@5297:1293", limit=5)
    assert [h.target for h in hits] == [changes[-1].target.key()] * 5
    assert hits[0].outcome == "applied" and hits[0].request_id == "req_1"
    none_here, _ = history.read_history(r, keys, BUSINESS, target="item:109@1:1")
    assert none_here == []
    page1, cursor = history.read_history(r, keys, BUSINESS, limit=400)
    page2, cursor2 = history.read_history(r, keys, BUSINESS, limit=400, cursor=cursor)
    page3, cursor3 = history.read_history(r, keys, BUSINESS, limit=400, cursor=cursor2)
    assert len(page1) == 400 and len(page2) == 400 and len(page3) == 201 and cursor3 is None
    assert len({e.id for e in page1 + page2 + page3}) == 1001
    applied, _ = history.read_history(r, keys, BUSINESS, outcome="applied")
    assert len(applied) == 1
    # Bytes per entry, as documented in workers/history.py (stream memory / entries).
    used = int(r.memory_usage(history.history_key(keys, BUSINESS), samples=0))
    per_entry = used / 1001
    print(f"history bytes per entry: {per_entry:.0f}")
    assert per_entry < 250


def test_bad_filters_name_the_field(r: Any, keys: Keys) -> None:
    with pytest.raises(history.FilterError) as bad_target:
        history.read_history(r, keys, BUSINESS, target="pizza")
    assert bad_target.value.field == "target"
    with pytest.raises(history.FilterError) as bad_since:
        history.parse_since("yesterday")
    assert bad_since.value.field == "since"
    assert history.parse_since("2h", now_ms=10_000_000) == 10_000_000 - 7_200_000
