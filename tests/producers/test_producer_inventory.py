"""The inventory stream consumer: entries -> changes, invalid entries kept, dead consumers' entries claimed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from producer_helpers import BUSINESS, STORE, make_settings

from config.redis import Keys
from producers.inventory import EntryError, InventoryConsumer, parse_entry, stream_key
from producers.mapping import Mappings
from producers.review import list_review
from workers.changes import Store, Target
from workers.ledger import Ledger


def target(entity: int = 103) -> Target:
    return Target(
        business_id=BUSINESS,
        store=Store(brand_id=STORE[0], branch_id=STORE[1]),
        level="item",
        entity_id=entity,
        field="enabled",
    )


@pytest.fixture
def consumer(r: redis.Redis, keys: Keys, mappings: Mappings) -> InventoryConsumer:
    c = InventoryConsumer(r, keys, make_settings(), name="c1", min_idle_ms=50)
    c.ensure_group()
    return c


def add(r: redis.Redis, c: InventoryConsumer, **fields: object) -> str:
    return str(r.xadd(c.stream, {k: str(v) for k, v in fields.items()}))


def pending_count(r: redis.Redis, c: InventoryConsumer) -> int:
    return int(r.xpending(c.stream, c.group)["pending"])  # type: ignore[index]


def test_stream_key_is_under_the_prefix(keys: Keys) -> None:
    assert stream_key(keys, make_settings()) == f"{keys.prefix}:stream:inventory"


def test_entries_become_changes_and_are_acked(r: redis.Redis, consumer: InventoryConsumer, ledger: Ledger) -> None:
    now = int(time.time() * 1000)
    add(r, consumer, sku="BURGER-CLASSIC", brand_id=STORE[0], branch_id=STORE[1], quantity=0, ts=now)
    assert consumer.read_new() == 1
    assert ledger.desired(target())[0] is False  # type: ignore[index]
    add(
        r,
        consumer,
        sku="BURGER-CLASSIC",
        location="KITCHEN-1",
        quantity="4",
        ts=datetime.fromtimestamp((now + 1000) / 1000, UTC).isoformat(),
        business_id=BUSINESS,
    )
    assert consumer.read_new() == 1
    assert ledger.desired(target())[0] is True  # type: ignore[index]
    assert pending_count(r, consumer) == 0


def test_older_entry_is_superseded(r: redis.Redis, consumer: InventoryConsumer, ledger: Ledger) -> None:
    add(r, consumer, sku="BURGER-CLASSIC", brand_id=STORE[0], branch_id=STORE[1], quantity=0, ts=1_750_000_000_000)
    add(r, consumer, sku="BURGER-CLASSIC", brand_id=STORE[0], branch_id=STORE[1], quantity=9, ts=1_000_000_000_000)
    assert consumer.read_new() == 2
    assert ledger.desired(target())[0] is False  # type: ignore[index]


def test_duplicate_event_id_is_recorded_once(r: redis.Redis, consumer: InventoryConsumer, ledger: Ledger) -> None:
    for _ in range(2):
        add(r, consumer, sku="BURGER-CLASSIC", location="KITCHEN-1", quantity=0, ts=1_700_000_000_000, event_id="pos-9")
        consumer.read_new()
    assert ledger.desired(target())[1].endswith(".000000000001")  # type: ignore[index]


def test_unparseable_entry_is_logged_acked_and_kept(
    r: redis.Redis, keys: Keys, consumer: InventoryConsumer, json_logs: pytest.CaptureFixture
) -> None:
    bad = add(r, consumer, sku="BURGER-CLASSIC", location="KITCHEN-1", quantity="lots", ts=1)
    good = add(r, consumer, sku="BURGER-CLASSIC", location="KITCHEN-1", quantity=1, ts=1)
    assert consumer.read_new() == 2
    assert pending_count(r, consumer) == 0
    rows = list_review(r, keys, kind="invalid")
    assert [(f["event_id"], f["reason"]) for _, f in rows] == [(bad, "quantity: 'lots' is not a number")]
    assert "quantity=lots" in rows[0][1]["raw"]
    assert "inventory entry cannot be parsed" in json_logs.readouterr().err
    assert good


def test_unmapped_entry_is_acked_and_kept(r: redis.Redis, keys: Keys, consumer: InventoryConsumer) -> None:
    add(r, consumer, sku="UNKNOWN-SKU", location="KITCHEN-1", quantity=0, ts=1, event_id="e-1")
    add(r, consumer, sku="BURGER-CLASSIC", location="NOWHERE", quantity=0, ts=1)
    assert consumer.read_new() == 2
    reasons = sorted(f["reason"] for _, f in list_review(r, keys, kind="unmapped"))
    assert reasons == ["location NOWHERE has no mapping", "sku UNKNOWN-SKU has no mapping for the store's business"]
    assert pending_count(r, consumer) == 0


def test_dead_consumers_entries_are_claimed(r: redis.Redis, consumer: InventoryConsumer, ledger: Ledger) -> None:
    add(r, consumer, sku="BURGER-CLASSIC", location="KITCHEN-1", quantity=0, ts=1_700_000_000_000)
    # a consumer that reads and dies before acknowledging
    r.xreadgroup(consumer.group, "dead-one", {consumer.stream: ">"}, count=10)
    assert pending_count(r, consumer) == 1
    assert consumer.read_new(block_ms=None) == 0  # not delivered again to others
    assert consumer.claim_stale() == 0  # not idle long enough yet
    time.sleep(0.08)
    assert consumer.claim_stale() == 1
    assert pending_count(r, consumer) == 0
    assert ledger.desired(target())[0] is False  # type: ignore[index]


def test_entry_delivered_too_often_is_set_aside(r: redis.Redis, keys: Keys, consumer: InventoryConsumer) -> None:
    consumer.max_deliveries = 2
    eid = add(r, consumer, sku="BURGER-CLASSIC", location="KITCHEN-1", quantity=0, ts=1)
    r.xreadgroup(consumer.group, "dead-one", {consumer.stream: ">"})
    time.sleep(0.06)
    r.xautoclaim(consumer.stream, consumer.group, "dead-two", min_idle_time=0, start_id="0-0")
    time.sleep(0.06)
    consumer.claim_stale()
    assert pending_count(r, consumer) == 0
    ((_, fields),) = list_review(r, keys, kind="invalid")
    assert fields["event_id"] == eid and "delivered 2 times" in fields["reason"]


def test_run_loop_stops_gracefully(r: redis.Redis, consumer: InventoryConsumer, ledger: Ledger) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), kwargs={"block_ms": 50}, daemon=True)
    thread.start()
    add(r, consumer, sku="BURGER-CLASSIC", brand_id=STORE[0], branch_id=STORE[1], quantity=0, ts=1)
    deadline = time.time() + 5
    while ledger.desired(target()) is None and time.time() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert ledger.desired(target())[0] is False  # type: ignore[index]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantity": "1", "ts": "1", "location": "K"}, "sku"),
        ({"sku": "A", "ts": "1", "location": "K"}, "quantity"),
        ({"sku": "A", "quantity": "NaN", "ts": "1", "location": "K"}, "quantity"),
        ({"sku": "A", "quantity": "1", "location": "K"}, "ts"),
        ({"sku": "A", "quantity": "1", "ts": "soon", "location": "K"}, "ts"),
        ({"sku": "A", "quantity": "1", "ts": "2024-01-01T00:00:00", "location": "K"}, "ts"),
        ({"sku": "A", "quantity": "1", "ts": "1"}, "store"),
        ({"sku": "A", "quantity": "1", "ts": "1", "brand_id": "5"}, "branch_id"),
        ({"sku": "A", "quantity": "1", "ts": "1", "brand_id": "5", "branch_id": "6", "location": "K"}, "store"),
        ({"sku": "A", "quantity": "1", "ts": "1", "brand_id": "x", "branch_id": "6"}, "brand_id"),
        ({"sku": "A", "quantity": "1", "ts": "1", "location": "K", "business_id": "-3"}, "business_id"),
    ],
)
def test_parse_entry_names_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(EntryError) as info:
        parse_entry("1-0", fields)
    assert info.value.field == field


def test_parse_entry_accepts_ms_and_iso() -> None:
    e = parse_entry("1-0", {"sku": " A ", "quantity": "-2.5", "ts": "2026-11-21T10:00:00Z", "location": "K"})
    assert e.sku == "A" and e.quantity == Decimal("-2.5") and e.ts_ms == 1_795_255_200_000
    e = parse_entry("1-0", {"sku": "A", "quantity": "3", "ts": "1795255200000", "brand_id": "1", "branch_id": "2"})
    assert (e.brand_id, e.branch_id, e.ts_ms, e.change_id) == (1, 2, 1_795_255_200_000, "inventory:1-0")


def test_parse_entry_refuses_a_time_from_the_future() -> None:
    ahead = str(int(time.time() * 1000) + 3_600_000)
    with pytest.raises(EntryError, match="ts: is more than 5 minutes in the future"):
        parse_entry("1-0", {"sku": "A", "quantity": "3", "ts": ahead, "location": "K"})
