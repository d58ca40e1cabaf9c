"""Read-back reconciliation: how soon drift in klikit is put back, and what the reads cost (``python -m bench.drift``).

(a) **Drift before a publish**, default settings (read-back 1 s after each publish, quiet 3 s):
    a settled store-level item target is changed in klikit behind menusync's back without a
    republish, then menusync gets a change for another item of that store, so its publish ships
    the tampered value. Measured: from that publish (the sandbox call record's ``ts``) to the
    publish after which the sandbox's published menu (``effective_published``) shows menusync's
    value again.
(b) **Drift after a publish**, periodic read-back every ``--interval-s`` (10 s): the target is
    changed and republished in klikit at a random moment. Measured: from the tamper to the
    publish after which the published menu shows menusync's value again. The figure for the
    900 s default is computed from the model (wait for the next periodic read plus the repair),
    not measured.
(c) **Reads per publish** in (a): getMenu calls / successful publishes.

Real processes: the sandbox, one worker (``dramatiq workers.actors``, 1 process x 8 threads)
and the scheduler as subprocesses; production timings and rate budget. ``--businesses`` identical
businesses (3 stores x 300 items, 300 store-level targets settled first) are sampled in
parallel, each its samples one after another on distinct targets, so that the run stays short.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    bench_main,
    enable_targets,
    is_publish,
    is_write,
    ok,
    percentile,
    read_share,
    row,
)
from devstack.sandbox.testing import SandboxAdmin
from devstack.stack import SCHEDULER_ARGV, ServiceProcess, bench_business_ids, bench_items, bench_stores

Store = tuple[int, int]

#: Production read-back settings (config/settings.py defaults), for the report.
RECONCILE_DEFAULTS: dict[str, Any] = {"reconcile_delay_ms": 1_000, "reconcile_interval_s": 900.0}
#: The scheduler's sweep period (config/settings.py default): a periodic read-back due now is
#: claimed at the next sweep.
SWEEP_INTERVAL_S = 2.0
STORES_PER_BUSINESS = 3
#: The production per-credential request budget (config/settings.py rate_per_minute).
BUDGET_PER_MINUTE = 300
ITEMS_PER_BUSINESS = 300
#: How long one sample may take before it is given up (and counted as not repaired).
SAMPLE_TIMEOUT_S = 45.0


def store_key(store: Store) -> str:
    return f"{store[0]}:{store[1]}"


def publishes_store(call: dict[str, Any], store: Store) -> bool:
    """A successful publish whose body names ``store``."""
    if not (is_publish(call) and ok(call)):
        return False
    body = call.get("body") or {}
    stores = body.get("stores") if isinstance(body, dict) else None
    return any(s.get("brandID") == store[0] and s.get("branchID") == store[1] for s in stores or [])


def reads_store(call: dict[str, Any], store: Store) -> bool:
    """A store-mode getMenu of ``store`` (any outcome)."""
    return call["method"] == "GET" and str(call["path"]).endswith("/menus") and f"branch_id={store[1]}" in call["query"]


def writes_value(call: dict[str, Any], store: Store, item: int, value: bool) -> bool:
    return is_write(call) and ok(call) and (store, item, value) in enable_targets(call)


class CallWatcher:
    """The call record of one business, fetched incrementally (``since``) from the sandbox."""

    def __init__(self, admin: SandboxAdmin, business_id: int, since: int) -> None:
        self.admin = admin
        self.business_id = business_id
        self.since = since
        self.calls: list[dict[str, Any]] = []

    def refresh(self) -> None:
        new = self.admin.calls(since=self.since, business_id=self.business_id)
        if new:
            self.calls += new
            self.since = max(self.since, max(int(c["seq"]) for c in new))

    def first(self, match: Callable[[dict[str, Any]], bool], after_ts: float) -> dict[str, Any] | None:
        return next((c for c in self.calls if float(c["ts"]) > after_ts and match(c)), None)

    def wait_first(
        self, match: Callable[[dict[str, Any]], bool], after_ts: float, timeout_s: float
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.refresh()
            found = self.first(match, after_ts)
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def finding_read(
    watcher: CallWatcher, store: Store, after_ts: float, repair_write: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The getMenu of ``store`` that found the drift: the last successful one before the repair write.

    (The first read after a tamper may have taken the snapshot just before the tamper landed.)
    """
    if repair_write is None:
        return None
    before = float(repair_write["ts"])
    reads = [c for c in watcher.calls if after_ts < float(c["ts"]) < before and reads_store(c, store) and ok(c)]
    return reads[-1] if reads else None


def published_enabled(admin: SandboxAdmin, business_id: int, store: Store, item: int) -> Any:
    state = admin.state(business_id)["effective_published"]
    return state.get(store_key(store), {}).get("item", {}).get(str(item), {}).get("enabled")


def wait_published(
    admin: SandboxAdmin, watcher: CallWatcher, store: Store, item: int, value: bool, after_ts: float, timeout_s: float
) -> tuple[dict[str, Any] | None, float | None]:
    """The publish after ``after_ts`` from which on the published menu shows ``value``, and when that was seen.

    The published menu changes only at a publish, so the state is looked at after each new
    publish of the store; the answer is the last such publish that arrived before the look.
    """
    deadline = time.monotonic() + timeout_s
    checked_ts = after_ts
    while time.monotonic() < deadline:
        watcher.refresh()
        candidates = [c for c in watcher.calls if float(c["ts"]) > checked_ts and publishes_store(c, store)]
        if not candidates:
            time.sleep(0.05)
            continue
        look_at = time.time()
        if published_enabled(admin, watcher.business_id, store, item) is value:
            watcher.refresh()
            shipped = [c for c in watcher.calls if after_ts < float(c["ts"]) < look_at and publishes_store(c, store)]
            return (shipped[-1] if shipped else candidates[-1]), look_at
        checked_ts = max(float(c["ts"]) for c in candidates)
    return None, None


@dataclass
class Business:
    """One business under test: its stores, the targets settled, and the items not yet used by a sample."""

    business_id: int
    stores: list[Store]
    desired: dict[tuple[Store, int], bool]
    unused: list[int]
    samples_a: list[dict[str, Any]] = field(default_factory=list)
    samples_b: list[dict[str, Any]] = field(default_factory=list)


def make_change(business_id: int, store: Store, item: int, value: bool, at_ms: int, change_id: str) -> Any:
    from workers.changes import Change, Target
    from workers.changes import Store as TargetStore

    target = Target(
        business_id=business_id,
        store=TargetStore(brand_id=store[0], branch_id=store[1]),
        level="item",
        entity_id=item,
        field="enabled",
    )
    return Change(id=change_id, target=target, value=value, occurred_at_ms=at_ms)


def settle_targets(stack: BenchStack, businesses: Sequence[int], items: int) -> list[Business]:
    """Record ``items`` x every store of each business (alternately on and off) and wait until published."""
    from workers.submit import submit_changes

    base_ms = int(time.time() * 1000) - 3_600_000
    out: list[Business] = []
    changes: list[Any] = []
    for b in businesses:
        stores = bench_stores(b, STORES_PER_BUSINESS)
        item_ids = bench_items(b, ITEMS_PER_BUSINESS)[:items]
        desired = {(s, i): n % 2 == 0 for s in stores for n, i in enumerate(item_ids)}
        for n, ((s, i), v) in enumerate(sorted(desired.items())):
            changes.append(make_change(b, s, i, v, base_ms + n, f"settle-{b}-{n}"))
        out.append(Business(b, stores, desired, list(reversed(item_ids))))
    submit_changes(changes, source="bench")
    stack.wait_settled(120, businesses)
    return out


def wait_for_readbacks(stack: BenchStack, businesses: Sequence[int], after_ms: int, timeout_s: float) -> bool:
    """Until every business has a read-back summary (``reconcile:last:B``) newer than ``after_ms``."""
    r = stack.redis()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            done = [int(r.hget(stack.k.business(b, "reconcile", "last"), "at_ms") or 0) > after_ms for b in businesses]
            if all(done):
                return True
            time.sleep(0.1)
        return False
    finally:
        r.close()


def sample_before_publish(admin: SandboxAdmin, watcher: CallWatcher, biz: Business, k: int) -> dict[str, Any]:
    """(a): tamper without republish, then a change for another item of the store; time the repair."""
    from workers.submit import submit_changes

    store = biz.stores[k % len(biz.stores)]
    tampered, companion = biz.unused.pop(), biz.unused.pop()
    desired = biz.desired[(store, tampered)]
    sample: dict[str, Any] = {"business": biz.business_id, "store": store_key(store), "item": tampered}
    t_tamper = time.time()
    admin.tamper(biz.business_id, "item", tampered, "enabled", not desired, store=store)
    value = not biz.desired[(store, companion)]
    biz.desired[(store, companion)] = value
    at_ms = int(time.time() * 1000) - 1
    submit_changes([make_change(biz.business_id, store, companion, value, at_ms, f"a-{biz.business_id}-{k}")])
    ship = watcher.wait_first(lambda c: publishes_store(c, store), t_tamper, SAMPLE_TIMEOUT_S)
    if ship is None:
        return {**sample, "error": "no publish after the change"}
    ship_ts = float(ship["ts"])
    sample["shipped_tampered"] = published_enabled(admin, biz.business_id, store, tampered) is (not desired)
    repair, seen_at = wait_published(admin, watcher, store, tampered, desired, ship_ts, SAMPLE_TIMEOUT_S)
    if repair is None or seen_at is None:
        return {**sample, "error": "not repaired in time"}
    repair_ts = float(repair["ts"])
    write = watcher.first(lambda c: writes_value(c, store, tampered, desired), ship_ts)
    read = finding_read(watcher, store, ship_ts, write)
    return {
        **sample,
        "publish_to_repaired_s": round(repair_ts - ship_ts, 3),
        "publish_to_seen_s": round(seen_at - ship_ts, 3),
        "publish_to_read_s": None if read is None else round(float(read["ts"]) - ship_ts, 3),
        "publish_to_repair_write_s": None if write is None else round(float(write["ts"]) - ship_ts, 3),
        "repair_write_to_publish_s": None if write is None else round(repair_ts - float(write["ts"]), 3),
    }


def sample_after_publish(
    admin: SandboxAdmin, watcher: CallWatcher, biz: Business, k: int, interval_s: float, rng: random.Random
) -> dict[str, Any]:
    """(b): at a random moment, tamper and republish; time until menusync's value is published again."""
    time.sleep(rng.uniform(0, interval_s))
    store = biz.stores[k % len(biz.stores)]
    tampered = biz.unused.pop()
    desired = biz.desired[(store, tampered)]
    sample: dict[str, Any] = {"business": biz.business_id, "store": store_key(store), "item": tampered}
    t_tamper = time.time()
    admin.tamper(biz.business_id, "item", tampered, "enabled", not desired, store=store, republish=True)
    repair, seen_at = wait_published(admin, watcher, store, tampered, desired, t_tamper, SAMPLE_TIMEOUT_S)
    if repair is None or seen_at is None:
        return {**sample, "error": "not repaired in time"}
    repair_ts = float(repair["ts"])
    write = watcher.first(lambda c: writes_value(c, store, tampered, desired), t_tamper)
    read = finding_read(watcher, store, t_tamper, write)
    # The publish's own read-back follows: let it pass, so that it cannot find the next sample's tamper.
    watcher.wait_first(lambda c: reads_store(c, store), repair_ts, 10.0)
    time.sleep(0.3)
    return {
        **sample,
        "tamper_to_repaired_s": round(repair_ts - t_tamper, 3),
        "tamper_to_seen_s": round(seen_at - t_tamper, 3),
        "tamper_to_read_s": None if read is None else round(float(read["ts"]) - t_tamper, 3),
        "tamper_to_repair_write_s": None if write is None else round(float(write["ts"]) - t_tamper, 3),
        "read_to_repaired_s": None if read is None else round(repair_ts - float(read["ts"]), 3),
    }


def run_parallel(businesses: Sequence[Business], body: Callable[[Business], None]) -> None:
    threads = [threading.Thread(target=body, args=(b,), name=f"drift-{b.business_id}") for b in businesses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    xs = [float(v) for v in values if v is not None]
    return {
        "n": len(xs),
        "p50": percentile(xs, 0.5),
        "p99": percentile(xs, 0.99),
        "min": min(xs) if xs else None,
        "max": max(xs) if xs else None,
        "mean": round(sum(xs) / len(xs), 3) if xs else None,
    }


def pair(d: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.2f}"

    return f"{f(d['p50'])} / {f(d['p99'])} (n={d['n']})"


def first_periodic_reads(businesses: Sequence[int], started: float, interval_s: float) -> dict[int, float]:
    """When the scheduler first reads each business back (its hash-spread offset within the interval)."""
    interval_ms = int(interval_s * 1000)
    return {b: started + (zlib.crc32(str(b).encode()) % max(1, interval_ms)) / 1000 for b in businesses}


def run(args: argparse.Namespace) -> dict[str, Any]:
    wall_started = time.monotonic()
    ids = bench_business_ids(args.businesses)
    per_business = math.ceil(args.samples / len(ids))
    settled_items = max(100, 3 * per_business + 10)
    stack = BenchStack(
        name="drift",
        sandbox_options={
            "businesses": len(ids),
            "stores_per_business": STORES_PER_BUSINESS,
            "items_per_business": ITEMS_PER_BUSINESS,
        },
        businesses=ids,
        settings={**PRODUCTION_TIMINGS, "worker_metrics": False, "log_level": "WARNING"},
    )
    raw: dict[str, Any] = {
        "businesses": ids,
        "samples_per_business": per_business,
        "targets_settled_per_business": settled_items * STORES_PER_BUSINESS,
    }
    with stack:
        assert stack.sandbox is not None
        stack.adopt_env()
        stack.start_workers(1)
        scheduler = stack.start_scheduler()
        scheduler_started = time.time()
        started_settle = time.monotonic()
        states = settle_targets(stack, ids, settled_items)
        settled_ms = int(time.time() * 1000)
        raw["settle_s"] = round(time.monotonic() - started_settle, 2)
        raw["first_readbacks_seen"] = wait_for_readbacks(stack, ids, settled_ms - 10_000, 20.0)
        time.sleep(0.5)
        url = stack.sandbox.url

        # (a) drift before a publish, default settings ------------------------------------------------
        since = max([int(c["seq"]) for c in stack.calls()] or [0])
        a_from = time.time()

        def part_a(biz: Business) -> None:
            admin = SandboxAdmin(url)
            watcher = CallWatcher(admin, biz.business_id, since)
            try:
                for k in range(per_business):
                    biz.samples_a.append(sample_before_publish(admin, watcher, biz, k))
            finally:
                admin.close()

        run_parallel(states, part_a)
        stack.wait_settled(60, ids)
        time.sleep(RECONCILE_DEFAULTS["reconcile_delay_ms"] / 1000 + 2.0)  # the last publishes' read-backs
        a_to = time.time()
        calls_a = [c for c in stack.sandbox.calls(since=since) if a_from <= float(c["ts"]) <= a_to]
        share_a = read_share(calls_a)
        periodic = first_periodic_reads(ids, scheduler_started, RECONCILE_DEFAULTS["reconcile_interval_s"])
        raw["a"] = {
            "window_s": round(a_to - a_from, 1),
            "periodic_reads_due_in_window": sorted(b for b, t in periodic.items() if a_from <= t <= a_to),
            "calls": share_a,
        }

        # (b) drift after a publish, periodic read-back every interval_s --------------------------------
        scheduler.terminate()
        stack.services.remove(scheduler)
        r = stack.redis()
        for shard in stack.k.shards():
            r.delete(
                stack.k.shard(shard, "reconcile", "due")
            )  # the 900 s schedule of (a) would keep each business's place
        r.close()
        b_env = {**stack.env, "MENUSYNC_RECONCILE_INTERVAL_S": str(args.interval_s)}
        scheduler_b = ServiceProcess(SCHEDULER_ARGV, b_env, log_path=stack.workdir / "scheduler-b.log").start()
        stack.services.append(scheduler_b)
        since_b = max([int(c["seq"]) for c in stack.calls()] or [0])
        b_from = time.time()

        def part_b(biz: Business) -> None:
            admin = SandboxAdmin(url)
            watcher = CallWatcher(admin, biz.business_id, since_b)
            rng = random.Random(args.seed + biz.business_id)
            try:
                for k in range(per_business):
                    biz.samples_b.append(sample_after_publish(admin, watcher, biz, k, args.interval_s, rng))
            finally:
                admin.close()

        run_parallel(states, part_b)
        b_to = time.time()
        calls_b = [c for c in stack.sandbox.calls(since=since_b) if b_from <= float(c["ts"]) <= b_to]
        share_b = read_share(calls_b)
        raw["b"] = {"window_s": round(b_to - b_from, 1), "calls": share_b}
        r = stack.redis()
        dead = int(r.zcard(stack.k.group("dlq", "index")) or 0)
        r.close()

    samples_a = [s for b in states for s in b.samples_a]
    samples_b = [s for b in states for s in b.samples_b]
    a_total = stats([s.get("publish_to_repaired_s") for s in samples_a])
    a_seen = stats([s.get("publish_to_seen_s") for s in samples_a])
    a_read = stats([s.get("publish_to_read_s") for s in samples_a])
    a_write = stats([s.get("publish_to_repair_write_s") for s in samples_a])
    a_quiet = stats([s.get("repair_write_to_publish_s") for s in samples_a])
    b_total = stats([s.get("tamper_to_repaired_s") for s in samples_b])
    b_detect = stats([s.get("tamper_to_read_s") for s in samples_b])
    b_repair = stats([s.get("read_to_repaired_s") for s in samples_b])
    shipped = sum(bool(s.get("shipped_tampered")) for s in samples_a)
    errors = [s for s in samples_a + samples_b if s.get("error")]
    reads_per_publish = share_a["overall"]["get_menu"] / max(1, share_a["overall"]["publishes_ok"])

    default_interval = RECONCILE_DEFAULTS["reconcile_interval_s"]
    overall_b = share_b["overall"]
    reads_per_minute_b = (overall_b["get_menu"] + overall_b["other_reads"]) / len(ids) / (raw["b"]["window_s"] / 60)
    # One periodic read-back: a getMenu per store, plus the store list (brands + branches), whose
    # cache (600 s) lapses between two reads 900 s apart.
    periodic_per_minute_default = (STORES_PER_BUSINESS + 2) / (default_interval / 60)
    repair_mean, repair_p99 = b_repair["mean"] or 0.0, b_repair["p99"] or 0.0

    def expected_mean_s(interval_s: float) -> float:
        # A tamper lands at a uniformly random moment of the read-back period, which is the interval
        # plus the lag from the due time to the next sweep (on average half a sweep): it waits half
        # the period on average, then the repair (read -> write -> quiet -> publish) measured in (b).
        return (interval_s + SWEEP_INTERVAL_S / 2) / 2 + repair_mean

    model = {
        "interval_s": default_interval,
        "mean_s": round(expected_mean_s(default_interval), 1),
        "worst_s": round(default_interval + SWEEP_INTERVAL_S + repair_p99, 1),
        "same_model_at_measured_interval_mean_s": round(expected_mean_s(args.interval_s), 2),
        "measured_mean_s": b_total["mean"],
    }
    raw.update(
        {
            "samples_a": samples_a,
            "samples_b": samples_b,
            "a_publish_to_repaired_s": a_total,
            "a_publish_to_seen_s": a_seen,
            "a_publish_to_read_s": a_read,
            "a_publish_to_repair_write_s": a_write,
            "a_repair_write_to_publish_s": a_quiet,
            "b_tamper_to_repaired_s": b_total,
            "b_tamper_to_read_s": b_detect,
            "b_read_to_repaired_s": b_repair,
            "b_interval_s": args.interval_s,
            "reads_per_publish_a": round(reads_per_publish, 3),
            "read_calls_per_minute_per_credential_b": round(reads_per_minute_b, 2),
            "periodic_read_calls_per_minute_per_credential_default": round(periodic_per_minute_default, 3),
            "model_default_interval": model,
            "dead_letters_at_end": dead,
            "wall_s": round(time.monotonic() - wall_started, 1),
        }
    )
    quiet_s = PRODUCTION_TIMINGS["publish_quiet_ms"] / 1000
    delay_s = RECONCILE_DEFAULTS["reconcile_delay_ms"] / 1000
    rows = [
        row(
            "(a) drift before a publish: p50 / p99 publish -> menusync's value published again (s)",
            pair(a_total),
        ),
        row("(a) ... of which publish -> read-back getMenu, p50 (s)", a_read["p50"]),
        row("(a) ... publish -> repair write, p50 (s)", a_write["p50"]),
        row("(a) ... repair write -> publish (quiet period), p50 (s)", a_quiet["p50"]),
        row("(a) samples whose publish shipped the tampered value", f"{shipped} of {len(samples_a)}"),
        row(
            f"(b) drift after a publish, read-back every {args.interval_s:g} s: p50 / p99 tamper -> "
            "menusync's value published again (s)",
            pair(b_total),
        ),
        row("(b) ... tamper -> the periodic getMenu that found it, p50 / p99 (s)", pair(b_detect)),
        row("(b) ... getMenu -> repaired value published, p50 / p99 (s)", pair(b_repair)),
        row(
            f"(b) computed for the {default_interval:g} s default: mean / worst tamper -> repaired (s)",
            f"{model['mean_s']:,.0f} / {model['worst_s']:,.0f}",
        ),
        row(
            "(c) getMenu calls / successful publishes in (a)",
            f"{share_a['overall']['get_menu']} / {share_a['overall']['publishes_ok']} = {reads_per_publish:.2f}",
        ),
        row(
            f"(b) read calls per minute per credential with a {args.interval_s:g} s period "
            f"(getMenu + store list; budget {BUDGET_PER_MINUTE}/min)",
            f"{reads_per_minute_b:.1f} ({100 * reads_per_minute_b / BUDGET_PER_MINUTE:.1f} % of the budget)",
        ),
        row(
            f"(b) computed for the {default_interval:g} s default: periodic read calls per minute per credential",
            f"{periodic_per_minute_default:.2f} ({100 * periodic_per_minute_default / BUDGET_PER_MINUTE:.2f} % "
            "of the budget)",
        ),
        row("samples not repaired within the time cap", len(errors), "0", not errors),
        row("dead letters at the end", dead),
        row("benchmark wall time (s)", raw["wall_s"]),
    ]
    notes = [
        f"Sandbox: {len(ids)} businesses x {STORES_PER_BUSINESS} stores x {ITEMS_PER_BUSINESS} items; each business "
        f"gets {settled_items * STORES_PER_BUSINESS} store-level item targets settled (written, published, read "
        f"back) before the samples. The businesses are sampled in parallel, {per_business} samples each, one "
        "after another, each on a target no other sample touched.",
        f"menusync: 1 worker process x 8 threads and the scheduler; flush window "
        f"{PRODUCTION_TIMINGS['flush_window_ms']} ms, quiet {quiet_s:g} s, read-back {delay_s:g} s after a "
        "publish, production rate budget (300/min, burst 20).",
        "(a) uses the default period (900 s); a periodic read-back due inside the (a) window is listed in "
        "the raw numbers (`periodic_reads_due_in_window`). The expected figure is about read-back delay + "
        f"read, re-pend and flush + quiet = {delay_s:g} + ~0.3 + {quiet_s:g} s.",
        "(b) starts a scheduler with MENUSYNC_RECONCILE_INTERVAL_S set and a fresh read-back schedule; each "
        "sample waits a random 0..interval first, so that the tamper lands at a random phase, and waits for "
        "the repair publish's own read-back before the next tamper.",
        "End of a repair: the publish after which the sandbox's `effective_published` shows menusync's value "
        "(its call record `ts`); the state is looked at after each publish of the store. `publish_to_seen_s` "
        "in the raw numbers is the moment that look was made.",
        f"Computed default: a tamper waits for the next periodic read (uniform over the period, which is the "
        f"interval plus up to one {SWEEP_INTERVAL_S:g} s sweep of claim lag), then the repair measured in (b) "
        "(getMenu -> repaired publish; its mean for the mean, its p99 for the worst). The same model gives "
        f"{model['same_model_at_measured_interval_mean_s']:.1f} s for the {args.interval_s:g} s period of (b), "
        f"against a measured mean of {b_total['mean'] or 0:.1f} s.",
    ]
    if errors:
        notes.append(f"Samples given up: {errors[:5]}")
    return {
        "description": (__doc__ or "").split("\n\n")[0],
        "scale": f"{len(ids)} businesses, {len(samples_a)} samples in (a), {len(samples_b)} in (b), "
        f"read-back period {args.interval_s:g} s in (b)",
        "rows": rows,
        "raw": raw,
        "notes": notes,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.drift", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--businesses", type=int, default=4, help="identical businesses sampled in parallel")
    p.add_argument("--samples", type=int, default=20, help="samples of (a) and of (b), over all businesses")
    p.add_argument("--interval-s", type=float, default=10.0, help="periodic read-back interval in (b)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--name", default="drift", help="result file name")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    bench_main(parse_args(argv), run)


if __name__ == "__main__":
    main()
