"""Bounded storage: what a sender or time can grow is capped, and the caps are enforced."""

from __future__ import annotations

import time
from typing import Any

from config.redis import Keys
from config.settings import Settings
from producers.inventory import InventoryConsumer
from producers.review import MAX_RAW_BYTES, list_review, queue_review, review_key
from producers.scheduler import purge_dead_letters
from producers.timers import Timers
from workers.deadletters import DeadLetter, DeadLetterStore


def test_a_padded_event_is_kept_for_review_in_a_few_kilobytes_with_its_length(r: Any, keys: Keys) -> None:
    body = ('{"pad": "' + "\U0001f354" * 63_000 + '"}').encode()  # about 254 KB of emoji
    queue_review(r, keys, kind="unmapped", source="square", event_id="e" * 5_000, reason="\U0001f354" * 5_000, raw=body)
    [(_entry_id, fields)] = list_review(r, keys)
    assert int(fields["raw_bytes"]) == len(body) > 250_000
    assert len(fields["raw"].encode()) <= MAX_RAW_BYTES
    stored = sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())
    assert stored < 8 * 1024, stored
    assert r.memory_usage(review_key(keys)) < 32 * 1024


def test_acknowledged_inventory_entries_are_trimmed_and_pending_ones_kept(r: Any, keys: Keys) -> None:
    consumer = InventoryConsumer(r, keys, Settings(), name="c1", min_idle_ms=50)  # type: ignore[call-arg]
    consumer.ensure_group()
    now = int(time.time() * 1000)
    for i in range(5):
        r.xadd(
            consumer.stream, {"sku": "UNKNOWN", "brand_id": "1", "branch_id": "1", "quantity": "0", "ts": str(now + i)}
        )
    assert consumer.read_new() == 5  # unmapped: kept for review and acknowledged
    # Another consumer of the group takes one more entry and has not acknowledged it yet.
    kept = r.xadd(consumer.stream, {"sku": "X", "brand_id": "1", "branch_id": "1", "quantity": "0", "ts": str(now)})
    r.xreadgroup(consumer.group, "other", {consumer.stream: ">"}, count=1)
    r.xadd(consumer.stream, {"sku": "Y", "brand_id": "1", "branch_id": "1", "quantity": "0", "ts": str(now)})
    assert consumer.trim_acknowledged() == 5
    assert next(entry_id for entry_id, _ in r.xrange(consumer.stream)) == kept
    assert r.xlen(consumer.stream) == 2


def test_dead_letters_past_the_retention_period_are_removed_and_counted_down(r: Any, keys: Keys) -> None:
    store = DeadLetterStore(r, keys)
    day = 86_400_000
    now = int(time.time() * 1000)
    old = store.add(DeadLetter(business_id=398, error_code="request_invalid", last_failure_ms=now - 31 * day))
    new = store.add(DeadLetter(business_id=398, error_code="request_invalid", last_failure_ms=now - 29 * day))
    assert purge_dead_letters(Timers(r, keys), retention_days=30) == 1
    assert store.get(old.id) is None and store.get(new.id) is not None
    assert store.counts_by_code(398) == {"request_invalid": 1} and store.count() == 1
