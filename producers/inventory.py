"""Inventory events from a Redis stream, read through a consumer group.

Stream key: ``Keys(prefix)("stream", settings.inventory_stream)``, i.e. ``<prefix>:stream:inventory``
by default; consumer group ``settings.inventory_group`` (created with ``MKSTREAM`` at start).

Entry fields (all strings, as Redis keeps them)::

    sku          required  the SKU (looked up in the business's SKU index, see producers.mapping)
    brand_id     \\  the store, given directly ...
    branch_id    /
    location     ... or a POS location name, mapped under source "inventory" (``location`` mapping rows)
    quantity     required  a decimal number; at or below settings.stock_threshold disables, above enables
    ts           required  the event time: integer milliseconds since the epoch, or ISO 8601 with a zone
    business_id  optional  restricts the SKU lookup to one business (needed if the SKU is in several)
    event_id     optional  duplicate deliveries of one event id are recorded once (kept dedupe_ttl_s)

Example: ``XADD menusync:stream:inventory * sku BURGER-CLASSIC brand_id 5297 branch_id 1293 quantity 0
ts 1763805600000 event_id pos-42``.

An entry is acknowledged only after its changes are recorded. An entry that cannot be parsed is
logged, kept in the review store (``kind=invalid``) and acknowledged; an entry whose SKU or
location has no mapping is kept as ``kind=unmapped`` and acknowledged. Entries left pending by a
consumer that died are claimed (``XAUTOCLAIM``) once idle for ``min_idle_ms``; an entry delivered
more than ``max_deliveries`` times is set aside as invalid instead of being retried forever.

Run with ``python -m producers.inventory`` (stops cleanly on SIGTERM / SIGINT).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import redis
import structlog

from config.logging import configure_logging
from config.redis import Keys
from config.settings import Settings, get_settings
from producers.dedupe import dedupe_key, queue_done
from producers.intake import accept
from producers.mapping import (
    INVENTORY_LOCATION_SOURCE,
    EntityRef,
    Mappings,
    StoreRef,
    availability_change,
    decode_stores,
)
from producers.metrics import INVALID_EVENTS, UNMAPPED_EVENTS
from producers.review import queue_review
from producers.runtime import shared_client
from producers.timers import Timers
from producers.webhooks import in_stock
from workers.changes import ENABLE_LEVELS, Change, check_event_time, ms_from_datetime

log = structlog.get_logger("producers.inventory")
SOURCE = "inventory"


def stream_key(keys: Keys, settings: Settings) -> str:
    return keys("stream", settings.inventory_stream)


class EntryError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class InventoryEntry:
    entry_id: str
    sku: str
    quantity: Decimal
    ts_ms: int
    business_id: int | None = None
    brand_id: int | None = None
    branch_id: int | None = None
    location: str | None = None
    event_id: str | None = None

    @property
    def change_id(self) -> str:
        return f"{SOURCE}:{self.event_id or self.entry_id}"[:200]


def _positive(fields: dict[str, str], name: str) -> int | None:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise EntryError(name, f"{raw[:40]!r} is not an integer") from None
    if value <= 0:
        raise EntryError(name, "must be positive")
    return value


def parse_ts(raw: str) -> int:
    raw = raw.strip()
    if not raw:
        raise EntryError("ts", "is missing")
    if raw.isascii() and raw.isdigit():
        return int(raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise EntryError("ts", f"{raw[:40]!r} is neither milliseconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        raise EntryError("ts", "an ISO time must carry a zone (Z or +hh:mm)")
    return ms_from_datetime(when)


def parse_entry(entry_id: str, fields: dict[str, str]) -> InventoryEntry:
    """Check one stream entry; raises :class:`EntryError` naming the field."""
    sku = (fields.get("sku") or "").strip()
    if not sku:
        raise EntryError("sku", "is missing")
    if len(sku) > 200:
        raise EntryError("sku", "is longer than 200 characters")
    raw_qty = (fields.get("quantity") or "").strip()
    if not raw_qty:
        raise EntryError("quantity", "is missing")
    try:
        quantity = Decimal(raw_qty)
    except InvalidOperation:
        raise EntryError("quantity", f"{raw_qty[:40]!r} is not a number") from None
    if not quantity.is_finite():
        raise EntryError("quantity", "is not a finite number")
    ts_ms = parse_ts(fields.get("ts") or "")
    try:
        check_event_time(ts_ms, "ts")
    except ValueError as exc:
        raise EntryError("ts", str(exc).removeprefix("ts ")) from exc
    brand, branch = _positive(fields, "brand_id"), _positive(fields, "branch_id")
    location = (fields.get("location") or "").strip() or None
    if (brand is None) != (branch is None):
        raise EntryError("brand_id" if brand is None else "branch_id", "brand_id and branch_id go together")
    if brand is None and location is None:
        raise EntryError("store", "give brand_id and branch_id, or location")
    if brand is not None and location is not None:
        raise EntryError("store", "give brand_id and branch_id, or location, not both")
    event_id = (fields.get("event_id") or "").strip() or None
    if event_id is not None and len(event_id) > 180:
        raise EntryError("event_id", "is longer than 180 characters")
    return InventoryEntry(
        entry_id=entry_id,
        sku=sku,
        quantity=quantity,
        ts_ms=ts_ms,
        business_id=_positive(fields, "business_id"),
        brand_id=brand,
        branch_id=branch,
        location=location,
        event_id=event_id,
    )


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = str(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _fields_text(fields: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


class InventoryConsumer:
    """One consumer of the group. Cheap to build; safe to run several (different ``name``)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        settings: Settings,
        *,
        name: str | None = None,
        batch: int = 200,
        min_idle_ms: int = 60_000,
        max_deliveries: int = 10,
    ) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.stream = stream_key(keys, settings)
        self.group = settings.inventory_group
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.mappings = Mappings(client, keys)
        self.timers = Timers(client, keys)

    def __repr__(self) -> str:
        return f"InventoryConsumer({self.stream!r}, group={self.group!r}, name={self.name!r})"

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- reading ---------------------------------------------------------------------------------

    def read_new(self, block_ms: int | None = None) -> int:
        """Read and handle up to ``batch`` new entries (blocking up to ``block_ms``). Answers how many."""
        reply: Any = self.client.xreadgroup(self.group, self.name, {self.stream: ">"}, count=self.batch, block=block_ms)
        entries = reply[0][1] if reply else []
        return self.handle(entries)

    def read_own_pending(self) -> int:
        """Entries delivered to this consumer name earlier but not acknowledged (a restart)."""
        total = 0
        while True:
            reply: Any = self.client.xreadgroup(self.group, self.name, {self.stream: "0"}, count=self.batch)
            entries = reply[0][1] if reply else []
            if not entries:
                return total
            handled = self.handle(entries)
            total += handled
            if handled == 0:
                return total

    def claim_stale(self) -> int:
        """Take over entries idle longer than ``min_idle_ms`` in any consumer's pending list."""
        self._set_aside_poison()
        total = 0
        cursor = "0-0"
        while True:
            reply: Any = self.client.xautoclaim(
                self.stream, self.group, self.name, min_idle_time=self.min_idle_ms, start_id=cursor, count=self.batch
            )
            cursor, entries = reply[0], reply[1]
            gone = [eid for eid, fields in entries if fields is None]
            if gone:
                self.client.xack(self.stream, self.group, *gone)
            live = [(eid, fields) for eid, fields in entries if fields is not None]
            if live:
                log.info("claimed pending inventory entries", count=len(live), consumer=self.name)
                total += self.handle(live)
            if cursor in ("0-0", b"0-0"):
                return total

    def _set_aside_poison(self) -> None:
        pending: Any = self.client.xpending_range(
            self.stream, self.group, min="-", max="+", count=self.batch, idle=self.min_idle_ms
        )
        poison = [p["message_id"] for p in pending if int(p["times_delivered"]) >= self.max_deliveries]
        if not poison:
            return
        pipe = self.client.pipeline(transaction=False)
        for eid in poison:
            rows: Any = self.client.xrange(self.stream, min=eid, max=eid)
            raw = _fields_text(rows[0][1]) if rows else ""
            log.error("inventory entry delivered too often; set aside", entry_id=eid, deliveries=self.max_deliveries)
            queue_review(
                pipe,
                self.keys,
                kind="invalid",
                source=SOURCE,
                event_id=str(eid),
                reason=f"delivered {self.max_deliveries} times without being recorded",
                raw=raw,
            )
            INVALID_EVENTS.labels(SOURCE).inc()
        pipe.xack(self.stream, self.group, *poison)
        pipe.execute()

    # -- handling ----------------------------------------------------------------------------------

    def handle(self, entries: Sequence[tuple[str, dict[str, str]]]) -> int:
        """Record the changes of ``entries``, then acknowledge them all (one pipeline)."""
        if not entries:
            return 0
        finish = self.client.pipeline(transaction=False)
        parsed: list[InventoryEntry] = []
        raw_fields = dict(entries)
        for entry_id, fields in entries:
            try:
                parsed.append(parse_entry(entry_id, fields))
            except EntryError as exc:
                self._set_aside_invalid(finish, entry_id, fields, exc.field, str(exc))
        parsed = self._drop_duplicates(parsed)
        changes, unmapped, invalid = self._resolve(parsed)
        for entry, error in invalid:
            # One entry that parses but cannot become a change is set aside alone; its batch goes on.
            self._set_aside_invalid(finish, entry.entry_id, raw_fields.get(entry.entry_id, {}), "entry", str(error))
        parsed = [e for e in parsed if e.entry_id not in {bad.entry_id for bad, _ in invalid}]
        for entry, reason in unmapped:
            UNMAPPED_EVENTS.labels(SOURCE).inc()
            queue_review(
                finish,
                self.keys,
                kind="unmapped",
                source=SOURCE,
                event_id=entry.event_id or entry.entry_id,
                reason=reason,
                raw=f"sku={entry.sku} quantity={entry.quantity} ts={entry.ts_ms} "
                f"business_id={entry.business_id or ''} brand_id={entry.brand_id or ''} "
                f"branch_id={entry.branch_id or ''} location={entry.location or ''} entry_id={entry.entry_id}",
            )
        if changes:
            accept(changes, timers=self.timers, producer=SOURCE)
        for entry in parsed:
            if entry.event_id:
                queue_done(finish, dedupe_key(self.keys, SOURCE, entry.event_id), self.settings.dedupe_ttl_s)
        finish.xack(self.stream, self.group, *[eid for eid, _ in entries])
        finish.execute()
        return len(entries)

    def _set_aside_invalid(self, pipe: Any, entry_id: str, fields: dict[str, str], field: str, error: str) -> None:
        log.warning(
            "inventory entry cannot be parsed; acked and kept for review",
            entry_id=entry_id,
            field=field,
            error=error,
            stream=self.stream,
        )
        INVALID_EVENTS.labels(SOURCE).inc()
        queue_review(
            pipe, self.keys, kind="invalid", source=SOURCE, event_id=entry_id, reason=error, raw=_fields_text(fields)
        )

    def _drop_duplicates(self, parsed: list[InventoryEntry]) -> list[InventoryEntry]:
        with_ids = [e for e in parsed if e.event_id]
        if not with_ids:
            return parsed
        pipe = self.client.pipeline(transaction=False)
        for e in with_ids:
            pipe.exists(dedupe_key(self.keys, SOURCE, e.event_id or ""))
        seen = {e.entry_id for e, hit in zip(with_ids, pipe.execute(), strict=True) if hit}
        if seen:
            log.info("inventory duplicates skipped", count=len(seen))
        return [e for e in parsed if e.entry_id not in seen]

    def _resolve(
        self, parsed: list[InventoryEntry]
    ) -> tuple[list[Change], list[tuple[InventoryEntry, str]], list[tuple[InventoryEntry, ValueError]]]:
        """Map every entry to changes: two or three pipelined round trips for the whole batch.

        Answers (changes, unmapped entries with why, entries whose changes are invalid with the error).
        """
        if not parsed:
            return [], [], []
        locations = list(dict.fromkeys(e.location for e in parsed if e.location))
        location_stores: dict[str, list[StoreRef]] = {}
        if locations:
            raw: Any = self.client.hmget(self.mappings.location_key(INVENTORY_LOCATION_SOURCE), locations)
            location_stores = {loc: decode_stores(v) for loc, v in zip(locations, raw, strict=True)}
        all_businesses: list[int] | None = None
        wanted: dict[str, list[int]] = {}
        for e in parsed:
            if e.business_id is not None:
                candidates = [e.business_id]
            elif e.location is not None:
                candidates = sorted({s.business_id for s in location_stores.get(e.location, [])})
            else:
                if all_businesses is None:
                    all_businesses = self.mappings.sku_businesses()
                candidates = all_businesses
            wanted[e.entry_id] = candidates
        businesses = sorted({b for bs in wanted.values() for b in bs})
        skus = list(dict.fromkeys(e.sku for e in parsed))
        index = self.mappings.sku_entities(skus, businesses)
        changes: list[Change] = []
        unmapped: list[tuple[InventoryEntry, str]] = []
        invalid: list[tuple[InventoryEntry, ValueError]] = []
        for e in parsed:
            if e.location is not None:
                stores = [s for s in location_stores.get(e.location, []) if s.business_id in wanted[e.entry_id]]
                if not location_stores.get(e.location):
                    unmapped.append((e, f"location {e.location} has no mapping"))
                    continue
            else:
                assert e.brand_id is not None and e.branch_id is not None
                stores = [StoreRef(b, e.brand_id, e.branch_id) for b in wanted[e.entry_id]]
            entities: list[EntityRef] = [
                ref for b in wanted[e.entry_id] for ref in index.get((e.sku, b), []) if ref.level in ENABLE_LEVELS
            ]
            pairs = [(en, st) for en in entities for st in stores if en.business_id == st.business_id]
            if not pairs:
                unmapped.append((e, f"sku {e.sku} has no mapping for the store's business"))
                continue
            enabled = in_stock(e.quantity, self.settings.stock_threshold)
            try:
                made = [availability_change(e.change_id, entity, store, enabled, e.ts_ms) for entity, store in pairs]
            except ValueError as exc:
                invalid.append((e, exc))
                continue
            changes.extend(made)
        return changes, unmapped, invalid

    # -- the loop ----------------------------------------------------------------------------------

    def trim_acknowledged(self) -> int:
        """Drop entries every consumer group has read and acknowledged (``XTRIM MINID``); answers how many.

        The cut is the oldest entry some group still needs: its oldest pending entry, or for a group
        with nothing pending the entry after its last delivered one. A stream without groups is left alone.
        """
        groups = self.client.xinfo_groups(self.stream)
        if not groups:
            return 0
        cuts: list[tuple[int, int]] = []
        for group in groups:
            if int(group["pending"]):
                oldest = self.client.xpending(self.stream, group["name"])["min"]
                cuts.append(_stream_id(oldest))
            else:
                ms, seq = _stream_id(group["last-delivered-id"])
                cuts.append((ms, seq + 1))
        ms, seq = min(cuts)
        trimmed = int(self.client.xtrim(self.stream, minid=f"{ms}-{seq}", approximate=False))
        if trimmed:
            log.info("inventory stream trimmed", entries=trimmed, stream=self.stream)
        return trimmed

    def run(self, stop: threading.Event, *, block_ms: int = 1000, claim_every_s: float = 10.0) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        self.ensure_group()
        self.read_own_pending()
        last_claim = 0.0
        backoff = 0.1
        while not stop.is_set():
            try:
                if time.monotonic() - last_claim >= claim_every_s:
                    self.claim_stale()
                    self.trim_acknowledged()
                    last_claim = time.monotonic()
                self.read_new(block_ms)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:
                # READONLY: a failover demoted the Redis this connection reached; wait for the new master.
                log.warning("redis unavailable; retrying", error=str(exc), retry_in_s=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self.ensure_group()
                    continue
                raise


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m producers.inventory", description="Consume inventory events.")
    parser.add_argument("--consumer", default=None, help="consumer name (default: host-pid)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--min-idle-ms", type=int, default=60_000, help="claim others' entries idle this long")
    parser.add_argument("--block-ms", type=int, default=1000)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    client = shared_client(settings.redis_url)
    consumer = InventoryConsumer(
        client, Keys(settings.prefix), settings, name=args.consumer, batch=args.batch, min_idle_ms=args.min_idle_ms
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping inventory consumer", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("inventory consumer started", stream=consumer.stream, group=consumer.group, consumer=consumer.name)
    consumer.run(stop, block_ms=args.block_ms)
    log.info("inventory consumer stopped", consumer=consumer.name)


if __name__ == "__main__":
    main()
