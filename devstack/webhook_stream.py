"""A webhook delivery stream and its end-state check, shared by the lunch-rush benchmark and the chaos tests.

:func:`make_stream` draws a seeded stream of Standard Webhooks deliveries (Poisson arrivals,
redeliveries, changes with an older event time than ones already sent); :func:`deliver` posts it
to ``POST /webhooks/standard`` over several lanes with retries; :func:`expected_final` is the
newest value of every target the stream changed, and :func:`final_state_mismatches` compares it
with the sandbox's published menus.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.stack import bench_items, bench_stores

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"bench-lunch-rush-webhook-secret!").decode()
API_TOKEN = "bench-api-token-4c1f9e"


@dataclass
class Delivery:
    """One webhook delivery: ``unique`` is the index of the change it carries (redeliveries share it)."""

    at_s: float
    unique: int
    msg_id: str
    body: bytes
    duplicate: bool = False
    # filled in by the sender
    sent_at: float = 0.0
    status: int | None = None
    accepted: int = 0
    superseded: int = 0
    attempts: int = 0


@dataclass
class Change:
    business: int
    store: tuple[int, int]
    item: int
    value: bool
    occurred_ms: int
    change_id: str
    late: bool = False


@dataclass
class Stream:
    changes: list[Change]
    deliveries: list[Delivery]
    businesses: list[int]
    duration_s: float

    def target(self, c: Change) -> tuple[int, tuple[int, int], int]:
        return (c.business, c.store, c.item)


def make_stream(
    businesses: Sequence[int],
    deliveries: int,
    duration_s: float,
    *,
    dup_rate: float = 0.2,
    late_rate: float = 0.05,
    stores: int = 3,
    items: int = 200,
    seed: int = 7,
    start_ms: int | None = None,
) -> Stream:
    """A Poisson stream of availability changes, with redeliveries and late (out-of-order) events."""
    rng = random.Random(seed)
    start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
    rate = deliveries / duration_s
    times: list[float] = []
    t = 0.0
    for _ in range(deliveries):
        t += rng.expovariate(rate)
        times.append(min(t, duration_s))
    changes: list[Change] = []
    out: list[Delivery] = []
    seen_ms: set[tuple[Any, int]] = set()
    for n, at in enumerate(times):
        if changes and rng.random() < dup_rate:
            # A redelivery of an earlier delivery (same webhook-id, same body).
            original = out[rng.randrange(len(out))]
            out.append(Delivery(at, original.unique, original.msg_id, original.body, duplicate=True))
            continue
        b = rng.choice(list(businesses))
        store = rng.choice(bench_stores(b, stores))
        item = rng.choice(bench_items(b, items))
        late = rng.random() < late_rate
        occurred = start_ms + int(at * 1000) - (rng.randint(500, 5000) if late else 0)
        while ((b, store, item), occurred) in seen_ms:  # no two changes of a target share a version time
            occurred += 1
        seen_ms.add(((b, store, item), occurred))
        change = Change(b, store, item, rng.random() < 0.5, occurred, f"rush-{seed}-{n}", late)
        changes.append(change)
        body = {
            "business_id": b,
            "changes": [
                {
                    "id": change.change_id,
                    "kind": "availability",
                    "level": "item",
                    "entity_ids": [item],
                    "enabled": change.value,
                    "stores": [{"brand_id": store[0], "branch_id": store[1]}],
                    "occurred_at": datetime.fromtimestamp(occurred / 1000, tz=UTC).isoformat(timespec="milliseconds"),
                }
            ],
        }
        out.append(Delivery(at, len(changes) - 1, f"msg_{seed}_{n}", json.dumps(body).encode()))
    return Stream(changes, out, list(businesses), duration_s)


def sign(delivery: Delivery, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    from producers.signatures import sign_standard

    ts = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(delivery.body, delivery.msg_id, ts, secret),
    }


@dataclass
class SendReport:
    sent: int = 0
    accepted_202: int = 0
    duplicate_200: int = 0
    failed: int = 0
    retries: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    lag_s: float = 0.0
    wall_s: float = 0.0


def _deliver_all(url: str, stream: Stream, lanes: int, max_attempts: int, deadline_s: float, secret: str) -> SendReport:
    """Open loop: delivery ``k`` is due at its ``at_s``; ``lanes`` threads, one keep-alive client each.

    A lane takes the next delivery, waits for its due time, and sends it (retrying on its own), so at
    most ``lanes`` requests are in flight. Threads with synchronous clients: httpx's asyncio client
    could not generate this load on this machine.
    """
    report = SendReport()
    lock = threading.Lock()
    queue = iter(stream.deliveries)
    start = time.monotonic()

    def count(status: str) -> None:
        with lock:
            report.statuses[status] = report.statuses.get(status, 0) + 1

    def lane() -> None:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            while True:
                with lock:
                    d = next(queue, None)
                if d is None:
                    return
                delay = start + d.at_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with lock:
                    report.lag_s = max(report.lag_s, time.monotonic() - start - d.at_s)
                for attempt in range(1, max_attempts + 1):
                    d.attempts = attempt
                    if time.monotonic() - start > deadline_s:
                        break
                    sent_at = time.time()
                    try:
                        resp = client.post("/webhooks/standard", content=d.body, headers=sign(d, secret))
                    except httpx.HTTPError:
                        count("connection_error")
                        time.sleep(min(2.0, 0.1 * 2**attempt))
                        continue
                    count(str(resp.status_code))
                    if resp.status_code in (200, 202):
                        d.status = resp.status_code
                        d.sent_at = sent_at
                        if resp.status_code == 202:
                            answer = resp.json()
                            d.accepted = int(answer.get("accepted", 0))
                            d.superseded = int(answer.get("superseded", 0))
                        break
                    if resp.status_code < 500 and resp.status_code not in (409, 429):
                        d.status = resp.status_code
                        break  # a rejection: retrying will not help
                    time.sleep(min(2.0, 0.1 * 2**attempt))

    pool = [threading.Thread(target=lane, name=f"deliver-{i}", daemon=True) for i in range(lanes)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    report.wall_s = time.monotonic() - start
    report.sent = len(stream.deliveries)
    report.accepted_202 = sum(d.status == 202 for d in stream.deliveries)
    report.duplicate_200 = sum(d.status == 200 for d in stream.deliveries)
    report.failed = sum(d.status not in (200, 202) for d in stream.deliveries)
    report.retries = sum(max(0, d.attempts - 1) for d in stream.deliveries)
    return report


def deliver(
    url: str,
    stream: Stream,
    *,
    concurrency: int = 32,
    max_attempts: int = 8,
    deadline_s: float | None = None,
    secret: str = WEBHOOK_SECRET,
) -> SendReport:
    """Send every delivery at its time (retrying 409/429/5xx and dropped connections like a POS would)."""
    deadline = deadline_s if deadline_s is not None else stream.duration_s * 3 + 60
    return _deliver_all(url, stream, concurrency, max_attempts, deadline, secret)


def recorded_changes(stream: Stream) -> list[tuple[float, Change]]:
    """(time it was recorded, change) of every change a delivery got recorded (first 202 carrying it)."""
    first: dict[int, float] = {}
    for d in stream.deliveries:
        if d.status == 202 and d.accepted > 0 and d.unique not in first:
            first[d.unique] = d.sent_at
    return [(t, stream.changes[u]) for u, t in sorted(first.items(), key=lambda kv: kv[1])]


def delivered(stream: Stream) -> set[int]:
    """Indexes of changes the receiver took (202, recorded or superseded, or 200 duplicate)."""
    return {d.unique for d in stream.deliveries if d.status in (200, 202)}


def expected_final(stream: Stream, only: set[int] | None = None) -> dict[tuple[int, tuple[int, int], int], bool]:
    """Per target, the value of its newest change (by event time) among the delivered ones."""
    taken = delivered(stream) if only is None else only
    newest: dict[tuple[int, tuple[int, int], int], Change] = {}
    for u in sorted(taken):
        c = stream.changes[u]
        key = stream.target(c)
        if key not in newest or c.occurred_ms > newest[key].occurred_ms:
            newest[key] = c
    return {k: c.value for k, c in newest.items()}


def final_state_mismatches(
    sandbox: Any, expected: dict[tuple[int, tuple[int, int], int], bool], skip: set[Any] | None = None
) -> list[dict[str, Any]]:
    """Targets whose value in the sandbox's published menus is not the expected one."""
    wrong: list[dict[str, Any]] = []
    by_business: dict[int, list[tuple[tuple[int, tuple[int, int], int], bool]]] = {}
    for key, value in expected.items():
        by_business.setdefault(key[0], []).append((key, value))
    for b, rows in by_business.items():
        published = sandbox.state(b)["effective_published"]
        for key, value in rows:
            if skip and key in skip:
                continue
            store_key = f"{key[1][0]}:{key[1][1]}"
            got = published.get(store_key, {}).get("item", {}).get(str(key[2]), {}).get("enabled")
            if got is not value:
                wrong.append({"business": b, "store": store_key, "item": key[2], "expected": value, "published": got})
    return wrong
