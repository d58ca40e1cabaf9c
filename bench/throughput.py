"""Sustained end-to-end throughput next to Dramatiq's own floor (``python -m bench.throughput``).

menusync: N availability changes for distinct targets (50 businesses x 3 stores x 200 items)
handed to ``submit_changes`` one at a time by 4 threads as fast as they go; the clock stops when
the ledger has nothing pending (every change written to the sandbox). Dramatiq: N no-op
messages sent by 4 threads to ``bench/noop.py``; the clock stops when all are acknowledged.
Both run with 2 worker processes x 8 threads on the same Redis in the same run.
Reported as changes/s, messages/s and their ratio (target >= 0.5).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    call_summary,
    row,
    save_result,
)
from devstack.stack import WORKER_ARGV, bench_business_ids, bench_items, bench_stores

#: Event times: an hour ago, so that every version lies in the past (the ledger refuses future events).
BASE_MS = int(time.time() * 1000) - 3_600_000


def _in_threads(items: Sequence[Any], threads: int, fn: Callable[[Any], object]) -> float:
    """Run ``fn`` over ``items`` split across ``threads``; answers the wall time."""
    parts = [items[i::threads] for i in range(threads)]

    def work(part: Sequence[Any]) -> None:
        for x in part:
            fn(x)

    pool = [threading.Thread(target=work, args=(p,)) for p in parts]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    businesses = bench_business_ids(50)
    stack = BenchStack(
        name="throughput",
        sandbox_options={"businesses": 50, "stores_per_business": 3, "items_per_business": 200},
        businesses=businesses,
        settings={
            **PRODUCTION_TIMINGS,
            "rate_per_minute": 6_000_000,
            "rate_burst": 100_000,
            "worker_metrics": False,
            "log_level": "WARNING",
        },
    )
    raw: dict[str, Any] = {"n": args.n, "sender_threads": args.threads}
    with stack:
        stack.adopt_env()
        import bench.noop as noop
        import workers.actors  # noqa: F401  (the menusync broker, before bench.noop sets its own)
        from workers.changes import Change, Store, Target
        from workers.submit import submit_changes

        r = stack.redis()
        # -- Dramatiq no-op floor ---------------------------------------------------------------------
        noop_argv = list(WORKER_ARGV)
        noop_argv[noop_argv.index("workers.actors")] = "bench.noop"
        stack.start_workers(2, argv=noop_argv, label="noop")
        started = time.perf_counter()
        send_s = _in_threads(list(range(args.n)), args.threads, lambda i: noop.noop.send(i))
        while noop.unfinished(r, stack.prefix):
            time.sleep(0.01)
        noop_s = time.perf_counter() - started
        for w in stack.workers:
            w.terminate()
        stack.workers.clear()
        raw["noop"] = {"wall_s": round(noop_s, 3), "send_s": round(send_s, 3), "per_s": args.n / noop_s}

        # -- menusync end to end -------------------------------------------------------------------------
        stack.start_workers(2)
        targets = [(b, s, i) for b in businesses for s in bench_stores(b, 3) for i in bench_items(b, 200)]
        step = max(1, len(targets) // args.n)
        chosen = targets[::step][: args.n]
        changes = [
            Change(
                id=f"tp-{n}",
                target=Target(
                    business_id=b,
                    store=Store(brand_id=s[0], branch_id=s[1]),
                    level="item",
                    entity_id=i,
                    field="enabled",
                ),
                value=n % 2 == 0,
                occurred_at_ms=BASE_MS + n,
            )
            for n, (b, s, i) in enumerate(chosen)
        ]
        started = time.perf_counter()
        submit_s = _in_threads(changes, args.threads, lambda c: submit_changes([c], source="bench"))
        pending_keys = [stack.k.business(b, "pending") for b in businesses]
        while True:
            pipe = r.pipeline(transaction=False)
            for key in pending_keys:
                pipe.zcard(key)
            if sum(pipe.execute()) == 0:
                break
            time.sleep(0.01)
        menusync_s = time.perf_counter() - started
        stack.wait_settled(120)
        summary = call_summary(stack.calls())
        raw["menusync"] = {
            "changes": len(changes),
            "wall_s": round(menusync_s, 3),
            "submit_s": round(submit_s, 3),
            "per_s": len(changes) / menusync_s,
            **summary,
        }
    ratio = raw["menusync"]["per_s"] / raw["noop"]["per_s"]
    raw["ratio"] = ratio
    rows = [
        row("Dramatiq no-op messages/s (send + process)", round(raw["noop"]["per_s"], 1)),
        row("menusync changes/s end to end (recorded -> written to klikit)", round(raw["menusync"]["per_s"], 1)),
        row("ratio menusync / Dramatiq no-op", round(ratio, 3), ">= 0.5", ratio >= 0.5),
        row("menusync: changes submitted/s (producer side alone)", round(len(changes) / submit_s, 1)),
        row("menusync klikit writes for those changes", summary["writes_ok"]),
    ]
    notes = [
        f"{args.n:,} changes (distinct targets) and {args.n:,} no-op messages; {args.threads} sender threads; "
        "2 worker processes x 8 threads each time; the sandbox without faults or rate limit; workers' rate budget "
        "opened wide.",
        "Both clocks start at the first send and stop when the last item is done (ledger empty / all messages "
        "acknowledged), so producer and worker cost both count. Coalescing is part of menusync's pipeline: "
        "changes that arrive while a business flushes ride one write.",
    ]
    return {
        "description": "Sustained changes/s end to end next to Dramatiq's own no-op message throughput, "
        "same Redis, same run.",
        "scale": f"{args.n:,} changes / messages",
        "rows": rows,
        "raw": raw,
        "notes": notes,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description="End-to-end throughput.")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--threads", type=int, default=4)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    result = run(parse_args(argv))
    path = save_result("throughput", result)
    for r in result["rows"]:
        print(f"{r['name']}: {r['value']}  {r.get('target') or ''}")
    print(f"written {path}")


if __name__ == "__main__":
    main()
