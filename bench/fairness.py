"""Fairness across businesses under saturation (``python -m bench.fairness``).

50 noisy businesses each record a burst of 2,000 availability changes while 10 quiet businesses
each record one change a second; klikit answers every call in 300 ms, and the workers run with
the production defaults (2 processes x 8 threads, production timings and rate budget), so more
businesses are busy than there are worker threads.

Reported: the quiet businesses' change -> write latency (p50, p99, max; target p99 <= 2 s) and
the noisy businesses' throughput (changes recorded per second until every noisy business has
nothing pending) with the quiet ones running, against a run of the noisy ones alone (target
>= 80 %). The quiet latencies over time go into the result for the fairness plot.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from typing import Any

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    bench_main,
    call_summary,
    change_to_write_pairs,
    percentile,
    row,
)
from devstack.stack import bench_business_ids, bench_items, bench_stores

#: Event times start an hour ago: every version lies in the past (the ledger refuses future events).
BASE_MS = int(time.time() * 1000) - 3_600_000
ITEMS = 200
STORES = 3


def _change(business: int, store: tuple[int, int], item: int, value: bool, at_ms: int, cid: str) -> Any:
    from workers.changes import Change, Store, Target

    return Change(
        id=cid,
        target=Target(
            business_id=business,
            store=Store(brand_id=store[0], branch_id=store[1]),
            level="item",
            entity_id=item,
            field="enabled",
        ),
        value=value,
        occurred_at_ms=at_ms,
    )


def noisy_bursts(businesses: list[int], size: int, phase: str, base_ms: int, seed: int) -> list[list[Any]]:
    """Per noisy business, ``size`` random changes over its 200 items x 3 stores."""
    rng = random.Random(seed)
    out = []
    for b in businesses:
        items, stores = bench_items(b, ITEMS), bench_stores(b, STORES)
        out.append(
            [
                _change(b, rng.choice(stores), rng.choice(items), rng.random() < 0.5, base_ms + n, f"{phase}-{b}-{n}")
                for n in range(size)
            ]
        )
    return out


def record_bursts(bursts: list[list[Any]], batch: int) -> float:
    """Record every burst, business by business in batches; answers the seconds it took."""
    from workers.submit import submit_changes

    started = time.monotonic()
    for changes in bursts:
        for i in range(0, len(changes), batch):
            submit_changes(changes[i : i + batch], source="bench")
    return time.monotonic() - started


def wait_drained(stack: BenchStack, businesses: list[int], timeout: float) -> float:
    """Seconds until none of ``businesses`` has a pending target or a held flush lease."""
    started = time.monotonic()
    r = stack.redis()
    try:
        while True:
            pipe = r.pipeline(transaction=True)  # one snapshot: no business drains between two reads
            for b in businesses:
                pipe.zcard(stack.k.business(b, "pending"))
                pipe.exists(stack.k.business(b, "lease"))
            if not any(pipe.execute()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"noisy businesses not drained after {timeout} s")
            time.sleep(0.05)
    finally:
        r.close()


class QuietSender(threading.Thread):
    """Each quiet business records one change a second (spread evenly), each flipping a target."""

    def __init__(self, businesses: list[int], base_ms: int) -> None:
        super().__init__(daemon=True)
        self.businesses = businesses
        self.base_ms = base_ms
        self.stop_event = threading.Event()
        self.sent: list[tuple[float, int, tuple[int, int], int, bool]] = []

    def run(self) -> None:
        from workers.submit import submit_changes

        rng = random.Random(7)
        values: dict[tuple[int, tuple[int, int], int], bool] = {}
        step = 1.0 / len(self.businesses)
        start = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            delay = start + n * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            b = self.businesses[n % len(self.businesses)]
            store, item = rng.choice(bench_stores(b, STORES)), rng.choice(bench_items(b, ITEMS))
            value = not values.get((b, store, item), True)
            values[(b, store, item)] = value
            sent = time.time()
            submit_changes([_change(b, store, item, value, self.base_ms + n, f"q-{b}-{n}")], source="bench")
            self.sent.append((sent, b, store, item, value))
            n += 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    all_ids = bench_business_ids(args.noisy + args.quiet)
    noisy, quiet = all_ids[: args.noisy], all_ids[args.noisy :]
    stack = BenchStack(
        name="fairness",
        sandbox_options={
            "businesses": len(all_ids),
            "stores_per_business": STORES,
            "items_per_business": ITEMS,
            "latency_ms": args.latency_ms,
        },
        businesses=all_ids,
        settings={**PRODUCTION_TIMINGS, "worker_metrics": False, "log_level": "WARNING"},
    )
    raw: dict[str, Any] = {}
    with stack:
        stack.adopt_env()
        stack.start_workers(args.processes)
        assert stack.sandbox is not None
        quiet_s = PRODUCTION_TIMINGS["publish_quiet_ms"] / 1000

        # Warm-up: one change per business (connections, store lists, first publishes), then quiet.
        warm = [bursts[0] for bursts in noisy_bursts(all_ids, 1, "w", BASE_MS - 60_000, seed=0)]
        record_bursts([warm], args.batch)
        stack.wait_settled(args.timeout)
        time.sleep(quiet_s)
        stack.sandbox.clear_calls()

        # (a) the noisy businesses alone
        bursts = noisy_bursts(noisy, args.burst, "a", BASE_MS, seed=1)
        t0 = time.monotonic()
        record_a = record_bursts(bursts, args.batch)
        drain_a = record_a + wait_drained(stack, noisy, args.timeout)
        alone = args.noisy * args.burst / (time.monotonic() - t0)
        calls_a = call_summary(stack.calls())
        raw["alone"] = {"record_s": round(record_a, 2), "drain_s": round(drain_a, 2), "calls": calls_a}
        stack.wait_settled(args.timeout)
        time.sleep(quiet_s)

        # (b) the same load with the quiet businesses beside it
        stack.sandbox.clear_calls()
        bursts = noisy_bursts(noisy, args.burst, "b", BASE_MS + 600_000, seed=2)
        sender = QuietSender(quiet, BASE_MS + 1_200_000)
        sender.start()
        time.sleep(args.lead_s)
        burst_at = time.time()
        t0 = time.monotonic()
        record_b = record_bursts(bursts, args.batch)
        drain_b = record_b + wait_drained(stack, noisy, args.timeout)
        together = args.noisy * args.burst / (time.monotonic() - t0)
        time.sleep(args.tail_s)
        sender.stop_event.set()
        sender.join()
        stack.wait_settled(args.timeout)
        calls_b = stack.calls()
        pairs = change_to_write_pairs(sender.sent, calls_b)
        lat = [found for _, found in pairs]
        by_time = [(round(sent - burst_at, 3), round(found, 3)) for sent, found in pairs]
        during = [found for t, found in by_time if 0 <= t <= drain_b]
        raw["together"] = {
            "record_s": round(record_b, 2),
            "drain_s": round(drain_b, 2),
            "calls": call_summary(calls_b),
            "quiet_changes": len(sender.sent),
            "quiet_measured": len(lat),
            "quiet_latency_by_time": by_time,
        }
    p99 = percentile(lat, 0.99)
    p99_during = percentile(during, 0.99)
    ratio = together / alone if alone else 0.0
    rows = [
        row(
            f"noisy: {args.noisy} x {args.burst:,} changes, recorded in (s) / drained after (s), alone",
            f"{record_a:.1f} / {drain_a:.1f}",
        ),
        row("noisy: the same beside the quiet businesses", f"{record_b:.1f} / {drain_b:.1f}"),
        row("noisy throughput alone / beside the quiet (changes/s)", f"{alone:,.0f} / {together:,.0f}"),
        row("noisy throughput beside the quiet / alone", round(ratio, 3), ">= 0.8", ratio >= 0.8),
        row(f"quiet: {args.quiet} businesses x 1 change/s, changes measured", f"{len(lat)} of {len(sender.sent)}"),
        row("quiet p50 change -> write (s)", percentile(lat, 0.5)),
        row("quiet p99 change -> write (s)", p99, "<= 2 s", p99 is not None and p99 <= 2.0),
        row("quiet p99 change -> write while the noisy drain (s)", p99_during),
        row("quiet max change -> write (s)", max(lat or [0.0])),
    ]
    notes = [
        f"klikit (the sandbox) answers every call after {args.latency_ms} ms. Workers: {args.processes} x "
        "`dramatiq workers.actors --processes 1 --threads 8` (the Procfile's 2 x 8 threads), production "
        "timings and rate budget (300 calls/min per credential).",
        "Throughput counts the noisy changes recorded per second from the first recorded change until no noisy "
        "business has a pending target or a flush lease. Quiet changes are sent from "
        f"{args.lead_s:.0f} s before the burst until {args.tail_s:.0f} s after the noisy businesses drained; "
        "'while the noisy drain' keeps those sent between the burst's start and the drain.",
    ]
    return {
        "description": __doc__.split("\n\n")[0] if __doc__ else "",
        "scale": f"{args.noisy} noisy x {args.burst} changes, {args.quiet} quiet x 1/s, klikit {args.latency_ms} ms",
        "rows": rows,
        "raw": raw,
        "notes": notes,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.split("\n\n")[0])
    p.add_argument("--noisy", type=int, default=50)
    p.add_argument("--burst", type=int, default=2000)
    p.add_argument("--quiet", type=int, default=10)
    p.add_argument("--latency-ms", type=int, default=300)
    p.add_argument("--processes", type=int, default=2, help="worker processes of 8 threads each")
    p.add_argument("--batch", type=int, default=200, help="changes per submit call of a noisy burst")
    p.add_argument("--lead-s", type=float, default=3.0)
    p.add_argument("--tail-s", type=float, default=5.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--name", default="fairness", help="result file name")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    bench_main(parse_args(argv), run)


if __name__ == "__main__":
    main()
