"""The workers issue's targets: coalescing, debounce, latency and memory (``python -m bench.burst``).

(a) 1,000 availability changes for one business (200 items x 3 stores) recorded in one batch:
    klikit writes (target <= 6, one per value and store) and publishes (exactly 1); a naive
    pipeline makes one write and one publish per change (1,000 and 1,000).
(b) the same burst spread evenly over 10 s: writes against the lower bound for the flush window
    in force (target <= 1.2x).
(c) 200 changes/s without faults (20 businesses, each active one second in five, so that each
    burst ends in a publish): p99 change recorded -> write succeeded (<= 500 ms) and p99 last
    write -> publish succeeded (<= quiet period + 1 s).
(d) peak RSS of the worker processes over the whole run (< 150 MB).

Real subprocess workers (``dramatiq workers.actors``, 2 processes x 8 threads) with production
timings, a sandbox subprocess, Redis under a fresh prefix (cleaned afterwards). The workers'
own rate budget is opened wide so that the counts measure coalescing, not throttling.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    RssSampler,
    bench_main,
    call_summary,
    change_to_write_latencies,
    flush_rounds,
    flush_window_lower_bound,
    is_write,
    ok,
    paced,
    percentile,
    pid_of,
    row,
    write_to_publish_latencies,
)
from devstack.stack import bench_business_ids, bench_items, bench_stores

#: Event times: an hour ago, so that every version lies in the past (the ledger refuses future events).
BASE_MS = int(time.time() * 1000) - 3_600_000


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


def burst_changes(business: int, count: int, items: int, stores: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    item_ids = bench_items(business, items)
    store_ids = bench_stores(business, stores)
    return [(business, rng.choice(store_ids), rng.choice(item_ids), rng.random() < 0.5) for _ in range(count)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    businesses = bench_business_ids(args.businesses)
    stack = BenchStack(
        name="burst",
        sandbox_options={"businesses": args.businesses, "stores_per_business": 3, "items_per_business": 200},
        businesses=businesses,
        settings={
            **PRODUCTION_TIMINGS,
            "rate_per_minute": 600_000,
            "rate_burst": 10_000,
            "worker_metrics": False,
            "log_level": "WARNING",
        },
    )
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    notes: list[str] = []
    with stack:
        stack.adopt_env()
        from workers.submit import submit_changes

        rss = RssSampler()
        worker_env = {"dramatiq_worker_timeout": str(args.worker_timeout_ms)} if args.worker_timeout_ms else None
        stack.start_workers(2, extra_env=worker_env)
        for w in stack.workers:
            rss.watch(pid_of(w))
        rss.start()
        assert stack.sandbox is not None
        b0 = businesses[0]
        quiet_s = PRODUCTION_TIMINGS["publish_quiet_ms"] / 1000

        # (a) one batch
        stack.sandbox.clear_calls()
        burst = burst_changes(b0, args.burst, 200, 3, seed=1)
        changes = [_change(b, s, i, v, BASE_MS + n, f"a-{n}") for n, (b, s, i, v) in enumerate(burst)]
        t0 = time.time()
        submit_changes(changes, source="bench")
        settle_a = stack.wait_settled(120, [b0])
        summary_a = call_summary(stack.calls())
        final: dict[tuple[Any, ...], bool] = {}
        for b, s, i, v in burst:
            final[(b, s, i)] = v
        groups = len({(key[1], v) for key, v in final.items()})
        raw["a"] = {**summary_a, "settle_s": round(settle_a, 2), "changes": len(changes), "value_store_groups": groups}
        rows += [
            row(
                f"(a) burst of {len(changes):,} in one batch: klikit writes",
                summary_a["writes_ok"],
                "<= 6",
                summary_a["writes_ok"] <= 6,
            ),
            row("(a) publishes", summary_a["publishes_ok"], "exactly 1", summary_a["publishes_ok"] == 1),
            row("(a) naive pipeline: writes / publishes (one each per change)", f"{len(changes):,} / {len(changes):,}"),
            row(
                "(a) write reduction vs naive",
                f"{len(changes) / max(1, summary_a['writes_ok']):,.0f}x",
                None,
            ),
        ]
        raw["a"]["burst_to_settled_s"] = round(time.time() - t0, 2)

        # (b) the same burst spread over 10 s
        time.sleep(quiet_s + 0.5)
        stack.sandbox.clear_calls()
        spread = args.spread_s / len(burst)
        schedule = [
            (n * spread, _change(b, s, i, v, BASE_MS + 10_000 + n, f"b-{n}")) for n, (b, s, i, v) in enumerate(burst)
        ]
        sent = paced(schedule, lambda c: submit_changes([c], source="bench"))
        settle_b = stack.wait_settled(120, [b0])
        calls_b = stack.calls()
        summary_b = call_summary(calls_b)
        rounds = flush_rounds([float(c["ts"]) for c in calls_b if is_write(c) and ok(c)])
        window_s = PRODUCTION_TIMINGS["flush_window_ms"] / 1000
        events = [(t, (s, i), (s, v)) for t, (_, s, i, v) in zip(sent, burst, strict=True)]
        bound, windows = flush_window_lower_bound(events, window_s)
        ratio_b = summary_b["writes_ok"] / max(1, bound)
        cycle_ms = 1000 * (sent[-1] - sent[0]) / max(1, len(rounds))
        raw["b"] = {
            **summary_b,
            "settle_s": round(settle_b, 2),
            "lower_bound": bound,
            "windows": windows,
            "flush_rounds": len(rounds),
            "mean_cycle_ms": round(cycle_ms, 1),
        }
        rows += [
            row("(b) same burst over 10 s: klikit writes", summary_b["writes_ok"]),
            row(f"(b) lower bound for a {window_s * 1000:.0f} ms flush window ({windows} windows)", bound),
            row("(b) writes / lower bound", round(ratio_b, 3), "<= 1.2", ratio_b <= 1.2),
            row("(b) flush rounds seen at klikit / mean cycle (ms)", f"{len(rounds)} / {cycle_ms:.0f}"),
            row("(b) publishes", summary_b["publishes_ok"]),
        ]

        # (c) 200 changes/s over all businesses, each active 1 s in 5
        time.sleep(quiet_s + 0.5)
        stack.sandbox.clear_calls()
        rng = random.Random(3)
        per_s = args.rate
        total = int(per_s * args.steady_s)
        stream: list[tuple[float, tuple[Any, ...]]] = []
        for n in range(total):
            t = n / per_s
            slot = int(t)
            active = [b for j, b in enumerate(businesses) if (slot + j) % 5 == 0] or businesses
            b = rng.choice(active)
            stream.append((t, (b, rng.choice(bench_stores(b, 3)), rng.choice(bench_items(b, 200)), rng.random() < 0.5)))
        schedule_c = [
            (t, _change(b, s, i, v, BASE_MS + 20_000 + n, f"c-{n}")) for n, (t, (b, s, i, v)) in enumerate(stream)
        ]
        sent_c = paced(schedule_c, lambda c: submit_changes([c], source="bench"))
        lag = max(0.0, (sent_c[-1] - sent_c[0]) - stream[-1][0])
        settle_c = stack.wait_settled(180)
        calls_c = stack.calls()
        summary_c = call_summary(calls_c)
        lat = change_to_write_latencies(
            [(t, b, s, i, v) for t, (_, (b, s, i, v)) in zip(sent_c, stream, strict=True)], calls_c
        )
        pub = write_to_publish_latencies(calls_c)
        p99_w, p99_p = percentile(lat, 0.99), percentile(pub, 0.99)
        raw["c"] = {
            **summary_c,
            "changes": total,
            "sender_lag_s": round(lag, 3),
            "settle_s": round(settle_c, 2),
            "change_to_write_s": {"n": len(lat), "p50": percentile(lat, 0.5), "p99": p99_w, "max": max(lat or [0])},
            "write_to_publish_s": {"n": len(pub), "p50": percentile(pub, 0.5), "p99": p99_p, "max": max(pub or [0])},
        }
        rows += [
            row(f"(c) {per_s} changes/s for {args.steady_s} s: changes", total),
            row("(c) klikit writes / publishes", f"{summary_c['writes_ok']:,} / {summary_c['publishes_ok']:,}"),
            row("(c) p50 change -> write (s)", percentile(lat, 0.5)),
            row("(c) p99 change -> write (s)", p99_w, "<= 0.5 s", p99_w is not None and p99_w <= 0.5),
            row("(c) p50 last write -> publish (s)", percentile(pub, 0.5)),
            row(
                "(c) p99 last write -> publish (s)",
                p99_p,
                f"<= quiet + 1 s = {quiet_s + 1:.1f} s",
                p99_p is not None and p99_p <= quiet_s + 1,
            ),
        ]
        mem = rss.stop()
        raw["rss"] = mem
        rows += [
            row(
                "(d) peak worker process RSS (MB)",
                mem["peak_worker_process_rss_mb"],
                "< 150 MB",
                mem["peak_worker_process_rss_mb"] < 150,
            ),
            row("(d) peak RSS of all worker processes together (MB)", mem["peak_worker_total_rss_mb"]),
        ]
        notes += [
            "Workers: 2 x `dramatiq workers.actors --processes 1 --threads 8`; flush window "
            f"{PRODUCTION_TIMINGS['flush_window_ms']} ms, quiet {PRODUCTION_TIMINGS['publish_quiet_ms']} ms, "
            f"max wait {PRODUCTION_TIMINGS['publish_max_wait_ms']} ms (production defaults).",
            "Writes are the sandbox call record's successful PATCH/POST calls; publishes its successful publishMenu "
            "calls. Change -> write is measured from the moment the change was handed to `submit_changes` to the "
            "arrival at the sandbox of the first successful write carrying its target and value after it.",
            "The lower bound of (b) replays the send times: a window opens at the first change after the previous "
            "one closed, and needs one call per (store, value) among the final values it saw. A pipeline whose "
            "cycle (window + message dispatch + the round's calls) is longer than the window coalesces more and "
            "can come in under it; the rounds row shows the cycle measured at klikit (writes closer than 30 ms "
            "apart count as one round).",
            "Naive counts of (a) are by construction: one write and one publish per change "
            "(bench/naive.py; measured in the lunch rush).",
        ]
    return {
        "description": __doc__.split("\n\n")[0] if __doc__ else "",
        "scale": f"{args.burst} changes; spread {args.spread_s} s; {args.rate}/s for {args.steady_s} s "
        f"over {args.businesses} businesses"
        + (f"; workers with dramatiq_worker_timeout={args.worker_timeout_ms} ms" if args.worker_timeout_ms else ""),
        "rows": rows,
        "raw": raw,
        "notes": notes,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--spread-s", type=float, default=10.0)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--steady-s", type=float, default=20.0)
    p.add_argument("--businesses", type=int, default=20)
    p.add_argument(
        "--worker-timeout-ms",
        type=int,
        default=None,
        help="experiment: Dramatiq's idle poll ceiling for the workers (env dramatiq_worker_timeout; default 1000)",
    )
    p.add_argument("--name", default="burst", help="result file name")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    bench_main(parse_args(argv), run)


if __name__ == "__main__":
    main()
