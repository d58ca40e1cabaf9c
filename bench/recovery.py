"""Recovery in seconds (``python -m bench.recovery``): what a dead worker costs, and what a live flush pays.

(a) ``kill``: a worker holding a business's flush lease is SIGKILLed mid-call (every klikit write
    takes ``--latency-ms``; the flush has tens of calls to go) while another worker is running;
    measured: kill -> that business's next klikit write (p50 / p99 / max over ``--trials``). Target
    p99 <= 10 s on Redis; the same run on RabbitMQ (``BROKER_URL=amqp://...``) beside it when one
    answers at 127.0.0.1:5672. The production lease TTL (10 s) and sweeper are in force.
(b) ``broker``: a worker SIGKILLed with messages it had fetched but not finished (the probe actor of
    ``bench/recovery_probe.py``); measured: kill -> a live worker starts them. Redis with menusync's
    defaults (``MENUSYNC_HEARTBEAT_TIMEOUT_MS``, ``MENUSYNC_BROKER_MAINTENANCE_CHANCE``), Redis with
    Dramatiq's own (60 s, 1,000 per million), RabbitMQ.
(c) ``lease``: the Redis commands a running flush spends on its lease: heartbeat renewals per second
    (one lease held for ``--lease-s`` with its heartbeat, counted) plus one fence per write attempt.
(d) ``rolling``: ``--rate`` changes/s over ``--businesses`` businesses while the two workers are
    restarted in turn every ``--restart-every-s`` (replacement started, then SIGTERM to the old
    one's main process); measured: p99 change -> write. Target <= 2 s.
(e) ``outage``: ``--rate`` changes/s over ``--businesses`` businesses while klikit answers every
    write with 502 for ``--outage-s`` (the retry age ``--retry-age-s`` far shorter); measured:
    klikit write calls per business per minute during the outage (a small constant), recovery ->
    every target correct in the published menus (target <= 10 s), writes after recovery against
    the number of (store, value) groups, dead letters (none).

Every variant runs in a subprocess of its own (``python -m bench.recovery kill --broker rabbitmq``...),
because the broker is chosen when ``workers.actors`` is imported. Results: ``bench/results/recovery.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PRODUCTION_TIMINGS,
    BenchStack,
    percentile,
    row,
    save_result,
)
from config.settings import Settings
from devstack.stack import WORKER_ARGV, ServiceProcess, bench_business_ids, bench_items, bench_stores, wait_for

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: Event times an hour ago: every version lies in the past.
BASE_MS = int(time.time() * 1000) - 3_600_000
#: Seconds a freshly started dramatiq worker needs before it consumes.
BOOT_S = 3.0
TARGET_KILL_S = 10.0
PROBE_ARGV = [sys.executable, "-m", "dramatiq", "bench.recovery_probe", "--processes", "1", "--threads", "1"]


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


def _visibility_changes(business: int, count: int, trial: int) -> list[Any]:
    from workers.changes import Change, Store, Target

    brand, branch = bench_stores(business, 1)[0]
    out = []
    for i, item in enumerate(bench_items(business, count)):
        target = Target(
            business_id=business,
            store=Store(brand_id=brand, branch_id=branch),
            level="item",
            entity_id=item,
            field="visibilities",
        )
        value = {"1": trial % 2 == 0, "6": True}
        out.append(Change(id=f"k{trial}-{i}", target=target, value=value, occurred_at_ms=BASE_MS + trial * 1000 + i))
    return out


# -- (a) kill -> flushing again ------------------------------------------------------------------------


def run_kill(args: argparse.Namespace) -> dict[str, Any]:
    business = bench_business_ids(1)[0]
    settings: dict[str, Any] = {**PRODUCTION_TIMINGS, "worker_metrics": False, "log_level": "WARNING"}
    settings["rate_per_minute"], settings["rate_burst"] = 600_000, 10_000
    if args.lease_ttl_ms:
        settings["lease_ttl_ms"] = args.lease_ttl_ms
    ttl_s = (args.lease_ttl_ms or Settings.model_fields["lease_ttl_ms"].default) / 1000
    stack = BenchStack(
        name=f"recovery-kill-{args.broker}",
        sandbox_options={"businesses": 1, "stores_per_business": 1, "items_per_business": args.changes},
        businesses=[business],
        settings=settings,
    )
    delays: list[float] = []
    remaining: list[int] = []
    rng = random.Random(args.seed)
    with stack:
        if args.broker == "rabbitmq":
            stack._env["BROKER_URL"] = AMQP_URL
        stack.adopt_env()
        from workers.submit import submit_changes

        assert stack.sandbox is not None
        stack.sandbox.set_faults(latency_ms=args.latency_ms, writes_only=True)
        stack.start_scheduler()

        def writes_since(t: float) -> list[float]:
            assert stack.sandbox is not None
            return sorted(
                c["ts"]
                for c in stack.sandbox.calls(business_id=business)
                if c["method"] == "PATCH" and c["ts"] > t and c["status"] is not None
            )

        for trial in range(args.trials):
            env = stack.env
            victim = ServiceProcess(WORKER_ARGV, env, log_path=stack.workdir / f"victim-{trial}.log").start()
            time.sleep(BOOT_S)
            started = time.time()
            submit_changes(_visibility_changes(business, args.changes, trial), source="bench")
            wait_for(lambda: len(writes_since(started)) >= 2, timeout=30, what="the victim's flush")  # noqa: B023
            survivor = ServiceProcess(WORKER_ARGV, env, log_path=stack.workdir / f"survivor-{trial}.log").start()
            # Kill at a random phase of the lease heartbeat (it beats every TTL/3 from the flush's start).
            time.sleep(rng.uniform(0, ttl_s / 3))
            victim.kill()
            killed = time.time()
            probe_client = stack.redis()
            remaining.append(int(probe_client.pttl(stack.k.business(business, "lease"))))
            probe_client.close()
            after = wait_for(lambda: writes_since(killed + 0.05), timeout=60, what="a write after the kill")  # noqa: B023
            delays.append(after[0] - killed)
            print(f"trial {trial}: lease left {remaining[-1]} ms, kill -> next write {delays[-1]:.2f} s", flush=True)
            stack.wait_settled(120)
            survivor.terminate(timeout=20)
    return {
        "broker": args.broker,
        "lease_ttl_s": ttl_s,
        "trials": len(delays),
        "kill_to_write_s": [round(d, 3) for d in delays],
        "lease_left_at_kill_ms": remaining,
        "p50_s": percentile(delays, 0.5),
        "p99_s": percentile(delays, 0.99),
        "max_s": max(delays) if delays else None,
    }


# -- (b) a dead worker's fetched messages ---------------------------------------------------------------


def run_broker(args: argparse.Namespace) -> dict[str, Any]:
    stack = BenchStack(name=f"recovery-broker-{args.broker}", sandbox_options={"businesses": 0})
    extra: dict[str, str] = {}
    if args.broker == "rabbitmq":
        extra["BROKER_URL"] = AMQP_URL
    if args.dramatiq_defaults:
        extra["MENUSYNC_HEARTBEAT_TIMEOUT_MS"] = "60000"
        extra["MENUSYNC_BROKER_MAINTENANCE_CHANCE"] = "1000"
    results: list[float] = []
    with stack:
        stack._env.update(extra)
        stack._env["MENUSYNC_WORKER_METRICS"] = "false"
        stack.adopt_env()
        import dramatiq

        from bench import recovery_probe

        broker = recovery_probe.broker
        broker_settings = recovery_probe.get_settings()
        broker.flush_all()
        r = stack.redis()
        started_key = f"{stack.prefix}:probe:started"
        for trial in range(args.trials):
            victim_env = {**stack.env, "PROBE_SLEEP_S": "3600"}
            victim = ServiceProcess(PROBE_ARGV, victim_env, log_path=stack.workdir / f"probe-{trial}.log").start()
            time.sleep(BOOT_S)
            tags = [f"t{trial}-{i}" for i in range(3)]
            for tag in tags:
                recovery_probe.probe.send(tag)
            # The victim runs the first and holds the others (fetched, not started).
            wait_for(lambda: r.hlen(started_key) >= 1 + trial * 3, timeout=30, what="the victim's probe")  # noqa: B023
            time.sleep(1.0)
            victim.kill()
            killed = time.time()
            worker = dramatiq.Worker(broker, worker_threads=3, worker_timeout=100)
            worker.start()
            try:
                wait_for(
                    lambda: all(
                        str(r.hget(started_key, t) or "").endswith(f":{os.getpid()}")
                        for t in tags  # noqa: B023
                    ),
                    timeout=180,
                    interval=0.05,
                    what="the probes to run again",
                )
            finally:
                worker.stop(timeout=5_000)
            again = max(float(str(r.hget(started_key, t)).split(":")[0]) for t in tags)
            results.append(again - killed)
            print(f"trial {trial}: kill -> fetched messages running again {results[-1]:.2f} s", flush=True)
        broker.flush_all()
        r.close()
    return {
        "broker": args.broker,
        "settings": "dramatiq defaults" if args.dramatiq_defaults else "menusync defaults",
        "heartbeat_timeout_ms": broker_settings.heartbeat_timeout_ms,
        "maintenance_chance": broker_settings.broker_maintenance_chance,
        "kill_to_running_s": [round(x, 3) for x in results],
        "p50_s": percentile(results, 0.5),
        "max_s": max(results) if results else None,
    }


# -- (d) rolling restart under load --------------------------------------------------------------------


def _enable_change(n: int, business: int, store: tuple[int, int], item: int, value: bool) -> Any:
    from workers.changes import Change, Store, Target

    target = Target(
        business_id=business,
        store=Store(brand_id=store[0], branch_id=store[1]),
        level="item",
        entity_id=item,
        field="enabled",
    )
    return Change(id=f"r-{n}", target=target, value=value, occurred_at_ms=BASE_MS + n)


def run_rolling(args: argparse.Namespace) -> dict[str, Any]:
    import signal
    import threading

    from bench.common import change_to_write_latencies, paced

    businesses = bench_business_ids(args.businesses)
    settings: dict[str, Any] = {**PRODUCTION_TIMINGS, "worker_metrics": False, "log_level": "WARNING"}
    settings["rate_per_minute"], settings["rate_burst"] = 600_000, 10_000
    stack = BenchStack(
        name="recovery-rolling",
        sandbox_options={"businesses": args.businesses, "stores_per_business": 3, "items_per_business": 200},
        businesses=businesses,
        settings=settings,
    )
    with stack:
        stack.adopt_env()
        from workers.submit import submit_changes

        stack.start_workers(2)
        stack.start_scheduler()
        assert stack.sandbox is not None
        stack.sandbox.clear_calls()
        rng = random.Random(5)
        stream: list[tuple[float, tuple[int, tuple[int, int], int, bool]]] = []
        for n in range(int(args.rate * args.rolling_s)):
            b = rng.choice(businesses)
            target = (b, rng.choice(bench_stores(b, 3)), rng.choice(bench_items(b, 200)), n % 2 == 0)
            stream.append((n / args.rate, target))
        schedule = [(t, _enable_change(n, *target)) for n, (t, target) in enumerate(stream)]
        stop = threading.Event()
        restarts: list[float] = []

        def roll() -> None:
            victim = 0
            while not stop.wait(args.restart_every_s):
                slot = victim % len(stack.workers)
                old = stack.workers[slot]
                log = stack.workdir / f"rolled-{victim}.log"
                stack.workers[slot] = ServiceProcess(old.argv, old.env, log_path=log).start()
                time.sleep(BOOT_S)  # the replacement is up before the old one is told to stop
                assert old.proc is not None
                os.kill(old.proc.pid, signal.SIGTERM)  # as a platform does: to the main process
                restarts.append(time.time())
                old.proc.wait(timeout=60)
                victim += 1

        roller = threading.Thread(target=roll, daemon=True)
        roller.start()
        sent = paced(schedule, lambda c: submit_changes([c], source="bench"))
        stop.set()
        roller.join(timeout=90)
        stack.wait_settled(180)
        latencies = change_to_write_latencies(
            [(t, b, s, i, v) for t, (_, (b, s, i, v)) in zip(sent, stream, strict=True)], stack.calls()
        )
    return {
        "changes": len(stream),
        "restarts": len(restarts),
        "measured": len(latencies),
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies) if latencies else None,
    }


# -- (e) a klikit outage under load ---------------------------------------------------------------------


def run_outage(args: argparse.Namespace) -> dict[str, Any]:
    from bench.common import paced

    businesses = bench_business_ids(args.businesses)
    settings: dict[str, Any] = {**PRODUCTION_TIMINGS, "worker_metrics": False, "log_level": "WARNING"}
    settings["rate_per_minute"], settings["rate_burst"] = 600_000, 10_000
    settings["retry_max_age_s"] = args.retry_age_s  # far shorter than the outage: nothing may age out
    stack = BenchStack(
        name="recovery-outage",
        sandbox_options={"businesses": args.businesses, "stores_per_business": 3, "items_per_business": 200},
        businesses=businesses,
        settings=settings,
    )
    with stack:
        stack.adopt_env()
        from workers.submit import submit_changes

        stack.start_workers(2)
        stack.start_scheduler()
        sandbox = stack.sandbox
        assert sandbox is not None
        rng = random.Random(9)
        final: dict[tuple[int, tuple[int, int], int], bool] = {}
        stream: list[tuple[float, Any]] = []
        for n in range(int(args.rate * args.outage_s)):
            b = rng.choice(businesses)
            store, item, value = rng.choice(bench_stores(b, 3)), rng.choice(bench_items(b, 200)), rng.random() < 0.5
            final[(b, store, item)] = value
            stream.append((n / args.rate, _enable_change(n, b, store, item, value)))
        sandbox.clear_calls()
        sandbox.set_faults(downstream_rate=1.0, writes_only=True)
        down_at = time.time()
        paced(stream, lambda c: submit_changes([c], source="bench"))
        time.sleep(max(0.0, down_at + args.outage_s - time.time()))
        sandbox.clear_faults()
        up_at = time.time()

        def wrong() -> int:
            assert sandbox is not None
            bad = 0
            for b in businesses:
                published = sandbox.state(b)["effective_published"]
                for (fb, (brand, branch), item), value in final.items():
                    if fb == b:
                        row_ = published.get(f"{brand}:{branch}", {}).get("item", {}).get(str(item), {})
                        bad += row_.get("enabled") is not value
            return bad

        left = wrong()
        while left and time.time() - up_at < 120:
            time.sleep(0.5)
            left = wrong()
        correct_after = time.time() - up_at
        stack.wait_settled(120)
        calls = sandbox.calls()
        r = stack.redis()
        dead = int(r.zcard(stack.k.group("dlq", "index")))
        r.close()
    steady = [c for c in calls if c["method"] == "PATCH" and down_at + 10 <= c["ts"] < up_at]
    minutes = max(1e-9, (up_at - down_at - 10) / 60)
    after = [c for c in calls if c["method"] == "PATCH" and c["ts"] >= up_at and c["status"] == 200]
    groups = {(b, store, value) for (b, store, _), value in final.items()}
    # Per business: its last successful publish after recovery made its menus right (nothing changed after).
    published_at: dict[int, float] = {}
    for c in calls:
        if c["path"].endswith("/publish") and c["status"] == 200 and c["ts"] >= up_at:
            published_at[c["business_id"]] = max(published_at.get(c["business_id"], 0.0), c["ts"] - up_at)
    per_business = sorted(published_at.values())
    return {
        "businesses": len(businesses),
        "outage_s": args.outage_s,
        "changes": len(stream),
        "retry_max_age_s": args.retry_age_s,
        "targets_wrong_at_end": left,
        "recovery_to_all_correct_s": round(correct_after, 2),
        "recovery_to_published_per_business_s": {
            "p50": percentile(per_business, 0.5),
            "p99": percentile(per_business, 0.99),
            "max": max(per_business) if per_business else None,
        },
        "write_calls_per_business_per_min_during_outage": round(len(steady) / len(businesses) / minutes, 2),
        "writes_after_recovery": len(after),
        "writes_lower_bound": len(groups),
        "dead_letters": dead,
    }


# -- (c) lease renewal cost ----------------------------------------------------------------------------


def run_lease(args: argparse.Namespace) -> dict[str, Any]:
    from config.redis import Keys, connect
    from config.settings import Settings
    from workers.lease import BusinessLease

    settings = Settings()
    client = connect(settings.redis_url)
    keys = Keys(f"msbench-lease-{os.getpid()}")
    lease = BusinessLease(client, keys, 1, settings.lease_ttl_ms)
    assert lease.acquire()
    with lease.keep_alive() as heartbeat:
        time.sleep(args.lease_s)
    lease.release()
    client.close()
    return {
        "ttl_ms": settings.lease_ttl_ms,
        "held_s": args.lease_s,
        "renewals": heartbeat.beats,
        "renewals_per_s": heartbeat.beats / args.lease_s,
    }


# -- driver --------------------------------------------------------------------------------------------


def _sub(mode: str, *extra: str) -> dict[str, Any]:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"menusync-recovery-{mode}-{os.getpid()}-{len(extra)}.json"
    cmd = [sys.executable, "-m", "bench.recovery", mode, "--out", str(out), *extra]
    print("==", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    data: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return data


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    rabbit = rabbitmq_reachable()
    trials = ["--trials", str(args.trials)]
    kill = {"redis": _sub("kill", "--broker", "redis", *trials)}
    if rabbit:
        kill["rabbitmq"] = _sub("kill", "--broker", "rabbitmq", *trials)
    kill["redis, MENUSYNC_LEASE_TTL_MS=8000"] = _sub("kill", "--broker", "redis", "--lease-ttl-ms", "8000", *trials)
    broker = {
        "redis_menusync": _sub("broker", "--broker", "redis", "--trials", str(args.broker_trials)),
        "redis_dramatiq": _sub("broker", "--broker", "redis", "--dramatiq-defaults", "--trials", "1"),
    }
    if rabbit:
        broker["rabbitmq"] = _sub("broker", "--broker", "rabbitmq", "--trials", str(args.broker_trials))
    lease = _sub("lease", "--lease-s", str(args.lease_s))
    rolling = _sub("rolling", "--rolling-s", str(args.rolling_s), "--restart-every-s", str(args.restart_every_s))
    outage = _sub("outage", "--outage-s", str(args.outage_s))
    rows = []
    for name, k in kill.items():
        p99 = k["p99_s"]
        rows.append(
            row(
                f"(a) {name}: SIGKILL mid-flush -> that business's next write, p50 / p99 / max "
                f"({k['trials']} kills, lease TTL {k['lease_ttl_s']:.0f} s)",
                f"{k['p50_s']:.2f} / {p99:.2f} / {k['max_s']:.2f} s",
                "p99 <= 10 s" if name == "redis" else None,
                p99 <= TARGET_KILL_S if name == "redis" else None,
            )
        )
    for name, b in broker.items():
        rows.append(
            row(
                f"(b) {name}: SIGKILL -> fetched messages running again, p50 / max",
                f"{b['p50_s']:.2f} / {b['max_s']:.2f} s",
            )
        )
    p99 = rolling["p99_s"]
    rows.append(
        row(
            f"(d) SIGTERM rolling restart every {args.restart_every_s:.0f} s during {args.rate} changes/s: "
            f"p50 / p99 change -> write ({rolling['restarts']} restarts)",
            f"{rolling['p50_s']:.2f} / {p99:.2f} s",
            "p99 <= 2 s",
            p99 is not None and p99 <= 2.0,
        )
    )
    name = f"(e) {outage['outage_s']:.0f} s klikit outage (all writes 502) at {args.rate} changes/s, retry age "
    name += f"{outage['retry_max_age_s']:.0f} s"
    rows += [
        row(
            f"{name}: recovery -> all {outage['changes']:,} changes correct in published menus",
            f"{outage['recovery_to_all_correct_s']:.2f} s",
            "<= 10 s",
            outage["targets_wrong_at_end"] == 0 and outage["recovery_to_all_correct_s"] <= 10,
        ),
        row(
            f"{name}: write calls per business per minute during the outage",
            outage["write_calls_per_business_per_min_during_outage"],
        ),
        row(
            f"{name}: writes after recovery / (store, value) groups",
            f"{outage['writes_after_recovery']} / {outage['writes_lower_bound']}",
        ),
        row(f"{name}: dead letters", outage["dead_letters"], "0", outage["dead_letters"] == 0),
    ]
    rows.append(
        row("(c) lease renewals per second per active flush (TTL/3 heartbeat)", round(lease["renewals_per_s"], 3))
    )
    rows.append(row("(c) lease fence per klikit write attempt (EVALSHA)", 1))
    notes = [
        "(a) The victim holds the lease in a flush of tens of visibility writes (one call each); the survivor is "
        "already running. The next write comes when the lease expires (6.7-10 s after the kill at the default "
        "10 s TTL: renewals every 3.3 s) plus the time for the waiting flush message to run.",
        "(b) With the Redis broker a dead worker's messages come back only after MENUSYNC_HEARTBEAT_TIMEOUT_MS "
        "plus the wait for queue maintenance; menusync does not wait for them: the lease watch and the sweeper "
        "re-nudge a business within seconds. RabbitMQ requeues them when the dead worker's connection drops.",
    ]
    if not rabbit:
        notes.append("No RabbitMQ answered at 127.0.0.1:5672: its rows are missing.")
    return {
        "description": __doc__.split("\n\n")[0] if __doc__ else "",
        "rows": rows,
        "notes": notes,
        "raw": {"kill": kill, "broker": broker, "lease": lease, "rolling": rolling, "outage": outage},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument(
        "mode", nargs="?", default="all", choices=["all", "kill", "broker", "lease", "rolling", "outage"]
    )
    parser.add_argument("--broker", default="redis", choices=["redis", "rabbitmq"])
    parser.add_argument("--dramatiq-defaults", action="store_true")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--broker-trials", type=int, default=3)
    parser.add_argument("--changes", type=int, default=80)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--lease-s", type=float, default=30.0)
    parser.add_argument("--businesses", type=int, default=20)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--rolling-s", type=float, default=30.0)
    parser.add_argument("--restart-every-s", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--outage-s", type=float, default=120.0)
    parser.add_argument("--retry-age-s", type=float, default=15.0)
    parser.add_argument("--lease-ttl-ms", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.mode == "all":
        save_result("recovery", run_all(args))
        return 0
    runs = {"kill": run_kill, "broker": run_broker, "lease": run_lease, "rolling": run_rolling, "outage": run_outage}
    result = runs[args.mode](args)
    if args.out:
        Path(args.out).write_text(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
