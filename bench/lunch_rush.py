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

The stream and its end-state check live in ``devstack/webhook_stream.py`` (the chaos tests use them too).
"""

from __future__ import annotations

import argparse
import bisect
import time
from collections.abc import Sequence
from typing import Any

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
from devstack.stack import WORKER_ARGV, bench_business_ids
from devstack.webhook_stream import (
    API_TOKEN,
    WEBHOOK_SECRET,
    Change,
    Delivery,
    deliver,
    expected_final,
    final_state_mismatches,
    make_stream,
    recorded_changes,
)

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
