"""The lunch rush (``python -m bench.lunch_rush [--scale short]``).

50 businesses x 3 stores x 200 items; 20,000 webhook deliveries over about a minute (Poisson
arrivals; 20 % are redeliveries of an earlier delivery, 5 % carry an event time older than
changes already sent) through ``POST /webhooks/standard`` (Standard Webhooks, canonical body),
against the sandbox with 10 % ``downstream_unavailable`` and a per-credential rate limit. Then the
same stream through the naive pipeline (``bench/naive.py``) in the same run.

Reported: klikit writes and publishes of both, the lower bound (changes coalesced per flush
window; one publish per business per quiet-separated burst plus one per ``max_wait``), p50/p99
change -> write and last change -> publish, final-state correctness (the sandbox's
``effective_published`` against the newest change per target), peak worker RSS, and the share
of menusync's klikit calls that are read-back ``getMenu`` calls (target <= 10 %), per business
(each its own credential and rate budget) and overall.

The stream and the checks are plain functions, reused by the chaos tests (tests/chaos/).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    RssSampler,
    call_summary,
    change_to_write_latencies,
    flush_window_lower_bound,
    is_get_menu,
    is_publish,
    latency_histogram,
    ok,
    paced,
    percentile,
    pid_of,
    publish_lower_bound,
    read_share,
    row,
    save_result,
)
from devstack.stack import WORKER_ARGV, bench_business_ids, bench_items, bench_stores

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"bench-lunch-rush-webhook-secret!").decode()
API_TOKEN = "bench-api-token-4c1f9e"

#: The read-back of each publish is sent this long after it (production default reconcile_delay_ms).
RECONCILE_DELAY_S = 1.0
#: Extra wait after settling before the call record is taken, so that the last read-backs are in it.
READBACK_GRACE_S = 3.0
#: Issue 9: reconciliation may use at most this share of a credential's calls.
READ_SHARE_TARGET = 0.10

SCALES: dict[str, dict[str, Any]] = {
    "full": {"businesses": 50, "deliveries": 20_000, "duration_s": 60.0},
    "short": {"businesses": 5, "deliveries": 2_000, "duration_s": 10.0},
}


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


def last_change_to_publish(recorded: Sequence[tuple[float, Change]], calls: Sequence[dict[str, Any]]) -> list[float]:
    """Per business: seconds from its last recorded change to its first successful publish after it."""
    last: dict[int, float] = {}
    for t, c in recorded:
        last[c.business] = max(last.get(c.business, 0.0), t)
    pubs: dict[int, list[float]] = {}
    for call in calls:
        if is_publish(call) and ok(call):
            pubs.setdefault(int(call["business_id"]), []).append(float(call["ts"]))
    out = []
    for b, t in last.items():
        times = sorted(pubs.get(b, []))
        j = bisect.bisect_left(times, t)
        if j < len(times):
            out.append(times[j] - t)
    return out


def lower_bounds(recorded: Sequence[tuple[float, Change]], window_s: float, quiet_s: float, max_wait_s: float) -> dict:
    writes = windows = publishes = 0
    per_business: dict[int, list[tuple[float, Change]]] = {}
    for t, c in recorded:
        per_business.setdefault(c.business, []).append((t, c))
    for rows in per_business.values():
        rows.sort(key=lambda tc: tc[0])
        events = [(t, (c.store, c.item), (c.store, c.value)) for t, c in rows]
        w, n = flush_window_lower_bound(events, window_s)
        writes += w
        windows += n
        publishes += publish_lower_bound([t for t, _ in rows], quiet_s, max_wait_s)
    return {"writes": writes, "windows": windows, "publishes": publishes}


def latency_rows(label: str, recorded: Sequence[tuple[float, Change]], calls: Sequence[dict[str, Any]]) -> dict:
    lat = change_to_write_latencies([(t, c.business, c.store, c.item, c.value) for t, c in recorded], calls)
    pub = last_change_to_publish(recorded, calls)
    return {
        "change_to_write_s": {
            "n": len(lat),
            "p50": percentile(lat, 0.5),
            "p99": percentile(lat, 0.99),
            "histogram": latency_histogram(lat),
        },
        "last_change_to_publish_s": {"n": len(pub), "p50": percentile(pub, 0.5), "p99": percentile(pub, 0.99)},
    }


# -- the benchmark ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    wall_started = time.monotonic()
    scale = dict(SCALES[args.scale])
    for name in ("businesses", "deliveries", "duration_s"):
        if getattr(args, name) is not None:
            scale[name] = getattr(args, name)
    businesses = bench_business_ids(scale["businesses"])
    rate, burst = args.klikit_rate_per_minute, args.klikit_rate_burst
    stack = BenchStack(
        name="lunch",
        sandbox_options={
            "businesses": scale["businesses"],
            "stores_per_business": 3,
            "items_per_business": 200,
            "downstream_rate": 0.1,
            "rate_per_minute": rate,
            "rate_burst": burst,
            "seed": 5,
        },
        businesses=businesses,
        settings={
            **PRODUCTION_TIMINGS,
            "rate_per_minute": int(rate * 0.9),
            "rate_burst": max(1, int(burst * 0.9)),
            "standard_webhook_secrets": WEBHOOK_SECRET,
            "api_tokens": API_TOKEN,
            "worker_metrics": False,
            "log_level": "WARNING",
        },
    )
    stream = make_stream(businesses, scale["deliveries"], scale["duration_s"], seed=args.seed)
    window_s = PRODUCTION_TIMINGS["flush_window_ms"] / 1000
    quiet_s = PRODUCTION_TIMINGS["publish_quiet_ms"] / 1000
    max_wait_s = PRODUCTION_TIMINGS["publish_max_wait_ms"] / 1000
    raw: dict[str, Any] = {"scale": scale, "klikit_rate_per_minute": rate, "klikit_rate_burst": burst}
    with stack:
        assert stack.sandbox is not None
        # -- menusync ------------------------------------------------------------------------------
        rss = RssSampler()
        stack.start_workers(2)
        for w in stack.workers:
            rss.watch(pid_of(w))
        stack.start_scheduler()
        stack.start_web()
        rss.start()
        report = deliver(stack.web_url, stream)
        try:
            settle = stack.wait_settled(args.settle_timeout_s)
        except TimeoutError as exc:
            settle = -1.0
            raw["settle_error"] = str(exc)
        mem = rss.stop()
        # The read-backs of the last publishes come reconcile_delay_ms after them: count them too.
        time.sleep(RECONCILE_DELAY_S + READBACK_GRACE_S)
        calls = stack.calls()
        recorded = recorded_changes(stream)
        expected = expected_final(stream)
        wrong = final_state_mismatches(stack.sandbox, expected)
        ms = {
            **call_summary(calls),
            "reads": read_share(calls),
            "get_menu_per_minute_per_credential": per_minute_per_credential(calls, len(businesses)),
            "send": report.__dict__,
            "changes_recorded": len(recorded),
            "superseded": sum(d.superseded for d in stream.deliveries),
            "settle_after_stream_s": round(settle, 2),
            "targets": len(expected),
            "final_state_mismatches": len(wrong),
            "mismatch_examples": wrong[:5],
            **latency_rows("menusync", recorded, calls),
            **mem,
        }
        bounds = lower_bounds(recorded, window_s, quiet_s, max_wait_s)
        raw["menusync"], raw["lower_bound"] = ms, bounds
        for w in stack.workers:
            w.terminate()
        stack.workers.clear()

        # -- naive ---------------------------------------------------------------------------------
        nv: dict[str, Any] = {}
        if not args.skip_naive:
            stack.sandbox.reset()
            stack.adopt_env()
            import bench.naive as naive

            naive_argv = list(WORKER_ARGV)
            naive_argv[naive_argv.index("workers.actors")] = "bench.naive"
            rss_n = RssSampler()
            stack.start_workers(2, argv=naive_argv, label="naive")
            for w in stack.workers:
                rss_n.watch(pid_of(w))
            rss_n.start()
            unique_first: dict[int, Delivery] = {}
            for d in stream.deliveries:
                unique_first.setdefault(d.unique, d)
            schedule = [(d.at_s, stream.changes[u]) for u, d in sorted(unique_first.items(), key=lambda kv: kv[1].at_s)]

            def send(c: Change) -> None:
                naive.naive_change.send(c.business, c.store[0], c.store[1], c.item, c.value, c.change_id)

            sent = paced(schedule, send)
            r = stack.redis()
            started = time.monotonic()
            drained = False
            while time.monotonic() - started < args.naive_timeout_s:
                if naive.unfinished(r, stack.prefix) == 0:
                    drained = True
                    break
                time.sleep(0.5)
            left = naive.unfinished(r, stack.prefix)
            naive_calls = stack.calls()
            naive_recorded = [(t, c) for t, (_, c) in zip(sent, schedule, strict=True)]
            naive_wrong = final_state_mismatches(stack.sandbox, expected_final(stream, set(unique_first)))
            nv = {
                **call_summary(naive_calls),
                "messages": len(schedule),
                "drained": drained,
                "unfinished_messages": left,
                "drain_after_stream_s": round(time.monotonic() - started, 1),
                "final_state_mismatches": len(naive_wrong),
                **latency_rows("naive", naive_recorded, naive_calls),
                **rss_n.stop(),
            }
            raw["naive"] = nv

    raw["wall_s"] = round(time.monotonic() - wall_started, 1)
    rows = [
        row("deliveries sent (incl. redeliveries)", report.sent),
        row(
            "time to deliver them all (s; the stream is planned over the duration)",
            f"{report.wall_s:.1f} (planned {scale['duration_s']:.0f})",
        ),
        row(
            "changes recorded (202) / duplicates (200) / failed",
            f"{report.accepted_202:,} / {report.duplicate_200:,} / {report.failed:,}",
        ),
        row("menusync klikit writes (successful / attempts)", f"{ms['writes_ok']:,} / {ms['write_attempts']:,}"),
        row("menusync publishes (successful / attempts)", f"{ms['publishes_ok']:,} / {ms['publish_attempts']:,}"),
        row("lower bound: writes / publishes", f"{bounds['writes']:,} / {bounds['publishes']:,}"),
        row("menusync writes / lower bound", round(ms["writes_ok"] / max(1, bounds["writes"]), 3)),
        row("menusync publishes / lower bound", round(ms["publishes_ok"] / max(1, bounds["publishes"]), 3)),
        row("menusync p50 / p99 change -> write (s)", _pair(ms["change_to_write_s"])),
        row("menusync p50 / p99 last change -> publish (s)", _pair(ms["last_change_to_publish_s"])),
        row(
            "menusync final state: targets wrong in published menus",
            f"{ms['final_state_mismatches']} of {ms['targets']:,}",
            "0",
            ms["final_state_mismatches"] == 0,
        ),
        row("menusync writes applied twice", ms["applied_twice"], "0", ms["applied_twice"] == 0),
        row("menusync 429s / 5xx seen", f"{ms['status_429']:,} / {ms['status_5xx']:,}"),
        row(
            "menusync read-back getMenu calls / all klikit calls",
            f"{ms['reads']['overall']['get_menu']:,} / {ms['reads']['overall']['calls']:,} = "
            f"{100 * ms['reads']['overall']['share']:.2f} %",
            f"<= {100 * READ_SHARE_TARGET:.0f} %",
            ms["reads"]["overall"]["share"] <= READ_SHARE_TARGET,
        ),
        row(
            "menusync highest read share of one business's calls",
            f"{100 * ms['reads']['max_business_share']:.2f} %",
            f"<= {100 * READ_SHARE_TARGET:.0f} %",
            ms["reads"]["max_business_share"] <= READ_SHARE_TARGET,
        ),
        row(
            "menusync getMenu calls per successful publish",
            round(ms["reads"]["overall"]["get_menu"] / max(1, ms["publishes_ok"]), 2),
        ),
        row(
            "menusync getMenu calls made after a write not yet published (read-back discarded as busy)",
            f"{ms['reads']['overall']['voided']:,} of {ms['reads']['overall']['get_menu_ok']:,}",
        ),
        row(
            f"menusync getMenu calls per minute per credential (its budget: {int(rate * 0.9)}/min)",
            ms["get_menu_per_minute_per_credential"],
        ),
        row(
            "menusync peak worker process RSS (MB)",
            ms["peak_worker_process_rss_mb"],
            "< 150 MB",
            ms["peak_worker_process_rss_mb"] < 150,
        ),
    ]
    if nv:
        rows += [
            row("naive messages (one per distinct change)", nv["messages"]),
            row("naive klikit writes (successful / attempts)", f"{nv['writes_ok']:,} / {nv['write_attempts']:,}"),
            row("naive publishes (successful / attempts)", f"{nv['publishes_ok']:,} / {nv['publish_attempts']:,}"),
            row("naive drained within the time cap", nv["drained"]),
            row("naive p50 / p99 change -> write (s)", _pair(nv["change_to_write_s"])),
            row("naive p50 / p99 last change -> publish (s)", _pair(nv["last_change_to_publish_s"])),
            row("naive final state: targets wrong", nv["final_state_mismatches"]),
            row("naive 429s / 5xx seen", f"{nv['status_429']:,} / {nv['status_5xx']:,}"),
            row(
                "klikit calls, menusync vs naive",
                f"{ms['write_attempts'] + ms['publish_attempts']:,} vs "
                f"{nv['write_attempts'] + nv['publish_attempts']:,}",
            ),
        ]
    notes = [
        f"Sandbox: {scale['businesses']} businesses x 3 stores x 200 items, 10 % downstream_unavailable (502), "
        f"per-credential limit {rate}/min (burst {burst}); menusync's own budget set to 90 % of it.",
        "menusync: web receiver (1 uvicorn process), scheduler, 2 worker processes x 8 threads, production timings "
        f"(flush window {PRODUCTION_TIMINGS['flush_window_ms']} ms, quiet {PRODUCTION_TIMINGS['publish_quiet_ms']} ms,"
        f" max wait {PRODUCTION_TIMINGS['publish_max_wait_ms']} ms).",
        "Naive: the distinct changes in the same order and timing, one Dramatiq message each "
        "(2 worker processes x 8 threads), one enableItems and one publishMenu per change, same client retries. "
        "It gets redeliveries filtered for free; it has no versions, so late events overwrite newer ones.",
        "Lower bound: per business, the recorded changes replayed through ideal flush windows (one call per "
        "store and value among a window's final values); publishes: one per burst separated by the quiet period, "
        "plus one per max wait the burst lasts.",
        "Reads: every GET /menus in the call record (read-back, store mode; any outcome, retries included) "
        "against every partner call menusync made, per business (one credential each) and overall; each takes "
        f"one request of the credential's rate budget. The record is taken {RECONCILE_DELAY_S + READBACK_GRACE_S:g} s "
        "after menusync settled, so that the last publishes' read-backs are in it.",
        "Change -> write is measured from the start of the delivery that got the change recorded to the arrival at "
        "the sandbox of the first successful write carrying its target and value; superseded and duplicate "
        "deliveries are not counted.",
    ]
    if raw.get("settle_error"):
        notes.append(f"menusync did not settle: {raw['settle_error']}")
    return {
        "description": "50 businesses' lunch rush through the webhook receiver, against a faulty, rate-limited "
        "klikit, next to a naive pipeline.",
        "scale": f"{args.scale}: {scale['businesses']} businesses, {scale['deliveries']:,} deliveries over "
        f"{scale['duration_s']} s",
        "rows": rows,
        "raw": raw,
        "notes": notes,
    }


def per_minute_per_credential(calls: Sequence[dict[str, Any]], credentials: int) -> float:
    """getMenu calls per minute and credential over the span of the call record (first to last call)."""
    if not calls or credentials < 1:
        return 0.0
    times = [float(c["ts"]) for c in calls]
    minutes = max(1e-3, (max(times) - min(times)) / 60)
    return round(sum(is_get_menu(c) for c in calls) / credentials / minutes, 2)


def _pair(d: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    return f"{f(d.get('p50'))} / {f(d.get('p99'))} (n={d.get('n')})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.lunch_rush", description="The lunch rush benchmark.")
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--businesses", type=int, default=None)
    p.add_argument("--deliveries", type=int, default=None)
    p.add_argument("--duration-s", type=float, default=None)
    p.add_argument(
        "--klikit-rate-per-minute", type=int, default=300, help="per credential (klikit draft: writes 300/min)"
    )
    p.add_argument("--klikit-rate-burst", type=int, default=30)
    p.add_argument("--settle-timeout-s", type=float, default=240.0)
    p.add_argument("--naive-timeout-s", type=float, default=240.0)
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--name", default=None, help="result file name (default lunch_rush, or lunch_rush_short)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    name = args.name or ("lunch_rush" if args.scale == "full" else f"lunch_rush_{args.scale}")
    path = save_result(name, result)
    for r in result["rows"]:
        print(f"{r['name']}: {r['value']}  {r.get('target') or ''}")
    print(f"written {path}")


if __name__ == "__main__":
    main()
