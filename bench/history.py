"""Intake cost of the change history: the record script with the history on vs off.

``python -m bench.history [--n 5000] [--rounds 3] [--paced-s 5] [--rate 1000]``

The history entry is written by the record script itself (``workers/lua/record.lua``), so its cost
is Redis time inside the intake's one round trip. This measures that step alone (``Ledger.record``,
as ``POST /v1/changes`` and the webhooks call it), which is the worst case for the ratio: the HTTP
parsing, signature checks and flush nudges around it cost the same with and without history.

- **unpaced**: single-change calls (a webhook carries one), then calls of 10 changes, ``--rounds``
  x ``--n`` changes each way; history off and on alternate in blocks of 250 calls, so that other
  load on the machine hits both alike; changes/s over all blocks.
- **paced**: ``--rate`` changes/s for one business (a busy kitchen, one change per call) for
  ``--paced-s`` seconds each way, in alternating one-second blocks; p50/p99 per call.
- **Redis time** per record call (``INFO commandstats`` of ``evalsha``, on a Redis of its own so
  that nothing else is counted) and the history's memory per entry (``MEMORY USAGE``).

- **HTTP intake**: two web processes (``python -m producers.web``) on that Redis, one with
  ``MENUSYNC_HISTORY_MAX_PER_BUSINESS=0``, one with the default; ``POST /v1/changes`` with one
  change per request (closed loop), then 10 changes per request at ``--rate`` changes/s; requests
  alternate between the two in blocks; p50/p99 per request and changes/s.

Target: history on slows intake by at most 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench.common import row, save_result, write_report
from config.redis import Keys, connect
from devstack.embedded_redis import EmbeddedRedis, free_port
from devstack.stack import WEB_ARGV, ServiceProcess, stack_env, write_credentials
from workers.changes import Change, Store, Target
from workers.history import history_key
from workers.ledger import Ledger

BUSINESS = 4242
STORES = [Store(brand_id=5297, branch_id=1293 + i) for i in range(3)]
HISTORY_MAX = 100_000


def _changes(n: int, start_ms: int, tag: str) -> list[Change]:
    return [
        Change(
            id=f"{tag}-{i}",
            target=Target(
                business_id=BUSINESS, store=STORES[i % 3], level="item", entity_id=100 + (i // 3) % 500, field="enabled"
            ),
            value=bool(i % 2),
            occurred_at_ms=start_ms + i,
        )
        for i in range(n)
    ]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _evalsha(r: Any) -> tuple[int, int]:
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _run(
    ledger: Ledger,
    batches: list[list[Change]],
    history: bool,
    pace_s: float | None = None,
    sink: list[float] | None = None,
) -> dict[str, float]:
    r = ledger.r
    calls0, usec0 = _evalsha(r)
    lat: list[float] = []
    started = time.perf_counter()
    for k, batch in enumerate(batches):
        if pace_s is not None:
            wait = started + k * pace_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t = time.perf_counter()
        ledger.record(batch, source="bench", actor="bench", history_max=HISTORY_MAX if history else 0)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - started
    calls1, usec1 = _evalsha(r)
    n = sum(len(b) for b in batches)
    if sink is not None:
        sink.extend(lat)
    return {
        "changes": n,
        "changes_per_s": n / wall,
        "p50_ms": _pct(lat, 0.5) * 1000,
        "p99_ms": _pct(lat, 0.99) * 1000,
        "mean_ms": statistics.fmean(lat) * 1000,
        "redis_us_per_call": (usec1 - usec0) / max(1, calls1 - calls0),
    }


def _body(n: int, start_ms: int, tag: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(start_ms / 1000, UTC).isoformat()
    items = [100 + (start_ms // 1000 + k) % 500 for k in range(n)]
    return {
        "business_id": BUSINESS,
        "changes": [
            {
                "id": tag,
                "kind": "availability",
                "level": "item",
                "entity_ids": items,
                "enabled": bool(start_ms % 2),
                "stores": [{"brand_id": 5297, "branch_id": 1293}],
                "occurred_at": at,
            }
        ],
    }


def _http(redis_url: str, args: argparse.Namespace, base: int) -> dict[str, dict[str, float]]:
    """Intake through ``POST /v1/changes``: history off vs on, two web processes, alternating blocks."""
    import tempfile
    from pathlib import Path

    import httpx

    token = "bench-history-token"
    folder = Path(tempfile.mkdtemp(prefix="menusync-bench-history-"))
    creds = write_credentials(folder / "credentials.toml", {BUSINESS: ("pk_bench", "sk_bench")})
    procs: dict[str, ServiceProcess] = {}
    urls: dict[str, str] = {}
    try:
        for mode, hmax in (("off", 0), ("on", HISTORY_MAX)):
            port = free_port()
            env = stack_env(
                redis_url=redis_url,
                prefix=f"bench-history-{mode}",
                klikit_url="http://127.0.0.1:9",
                credentials_file=creds,
                api_tokens=f"bench=*:{token}",
                history_max_per_business=hmax,
                log_level="WARNING",
            )
            procs[mode] = ServiceProcess([*WEB_ARGV, "--port", str(port)], env).start()
            urls[mode] = f"http://127.0.0.1:{port}"
        clients = {m: httpx.Client(base_url=u, headers={"Authorization": f"Bearer {token}"}) for m, u in urls.items()}

        def ready(m: str) -> bool:
            try:
                return clients[m].get("/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        for m, proc in procs.items():
            proc.wait_until(lambda m=m: ready(m), timeout=30)
        out: dict[str, dict[str, float]] = {}
        seq = [0]

        def block(mode: str, n_requests: int, per_request: int, pace_s: float | None, lat: list[float]) -> float:
            started = time.perf_counter()
            for k in range(n_requests):
                if pace_s is not None:
                    wait = started + k * pace_s - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                seq[0] += 1
                body = _body(per_request, base + seq[0] * 1_000, f"h{seq[0]}")
                t = time.perf_counter()
                response = clients[mode].post("/v1/changes", json=body)
                lat.append(time.perf_counter() - t)
                assert response.status_code == 202, response.text
            return time.perf_counter() - started

        for mode in ("off", "on"):  # warm-up
            block(mode, 100, 1, None, [])
        for label, per_request, pace_s, blocks in (
            ("1/request", 1, None, max(2, args.rounds * 4)),
            (f"{args.rate}/s, 10/request", 10, 10 / args.rate, max(2, int(args.paced_s))),
        ):
            lat: dict[str, list[float]] = {"off": [], "on": []}
            wall = {"off": 0.0, "on": 0.0}
            n_requests = 200 if pace_s is None else int(1 / pace_s)
            for _ in range(blocks):
                for mode in ("off", "on"):
                    wall[mode] += block(mode, n_requests, per_request, pace_s, lat[mode])
            for mode in ("off", "on"):
                out[f"{mode} {label}"] = {
                    "changes_per_s": len(lat[mode]) * per_request / wall[mode],
                    "p50_ms": _pct(lat[mode], 0.5) * 1000,
                    "p99_ms": _pct(lat[mode], 0.99) * 1000,
                    "mean_ms": statistics.fmean(lat[mode]) * 1000,
                }
        for c in clients.values():
            c.close()
        return out
    finally:
        for proc in procs.values():
            proc.terminate(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paced-s", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip the HTTP intake part")
    args = parser.parse_args(argv)
    server = EmbeddedRedis.start(persist=False)
    try:
        r = connect(server.url)
        keys = Keys("bench-history")
        ledger = Ledger(r, keys)
        base = int(time.time() * 1000) - 86_400_000
        results: dict[str, dict[str, float]] = {}
        seq = 0
        # Warm-up: every target exists before the first measured block (no block pays for creating them).
        _run(ledger, [_changes(args.n, base, "warm")], True)
        # Off and on alternate in short blocks, so that other load on the machine hits both alike.
        block = 250
        for size in (1, 10):
            totals = {mode: {"changes": 0.0, "wall_s": 0.0, "redis_us": 0.0, "calls": 0.0} for mode in ("off", "on")}
            for _ in range(max(1, args.rounds * args.n // (block * size))):
                for mode in ("off", "on"):
                    seq += 1
                    changes = _changes(block * size, base + seq * 10_000, f"b{seq}")
                    run = _run(ledger, [changes[i : i + size] for i in range(0, len(changes), size)], mode == "on")
                    t = totals[mode]
                    t["changes"] += run["changes"]
                    t["wall_s"] += run["changes"] / run["changes_per_s"]
                    t["redis_us"] += run["redis_us_per_call"] * block
                    t["calls"] += block
            for mode, t in totals.items():
                results[f"{mode}-{size}"] = {
                    "changes_per_s": t["changes"] / t["wall_s"],
                    "redis_us_per_call": t["redis_us"] / t["calls"],
                }
        paced: dict[str, dict[str, float]] = {}
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(max(1, int(args.paced_s))):  # one-second blocks, off and on alternating
            for mode in ("off", "on"):
                seq += 1
                changes = _changes(args.rate, base + seq * 10_000, f"p{seq}")
                _run(ledger, [[c] for c in changes], mode == "on", pace_s=1 / args.rate, sink=latencies[mode])
        for mode, lat in latencies.items():
            paced[mode] = {"p50_ms": _pct(lat, 0.5) * 1000, "p99_ms": _pct(lat, 0.99) * 1000, "calls": len(lat)}
        entries = int(r.xlen(history_key(keys, BUSINESS)))
        http = _http(server.url, args, base + (seq + 10) * 10_000) if args.http else {}
        per_entry = int(r.memory_usage(history_key(keys, BUSINESS), samples=0) or 0) / max(1, entries)
    finally:
        server.stop()

    def best(name: str, metric: str) -> float:
        return results[name][metric]

    rows = []
    for size in (1, 10):
        off, on = best(f"off-{size}", "changes_per_s"), best(f"on-{size}", "changes_per_s")
        slowdown = 1 - on / off
        rows += [
            row(f"{size} change(s) per call: changes/s, history off", round(off)),
            row(f"{size} change(s) per call: changes/s, history on", round(on)),
            row(
                f"{size} change(s) per call, as fast as it goes: record-step slowdown with history",
                f"{slowdown * 100:.1f} %",
            ),
            row(
                f"{size} change(s) per call: Redis time per call off / on (us)",
                f"{best(f'off-{size}', 'redis_us_per_call'):.1f} / {best(f'on-{size}', 'redis_us_per_call'):.1f}",
            ),
        ]
    p_off, p_on = paced["off"], paced["on"]
    rows += [
        row(
            f"{args.rate} changes/s for one business: p50 / p99 per call, history off (ms)",
            f"{p_off['p50_ms']:.2f} / {p_off['p99_ms']:.2f}",
        ),
        row(
            f"{args.rate} changes/s for one business: p50 / p99 per call, history on (ms)",
            f"{p_on['p50_ms']:.2f} / {p_on['p99_ms']:.2f}",
        ),
        row(
            f"{args.rate} changes/s: record-step p50 slowdown with history",
            f"{(p_on['p50_ms'] / p_off['p50_ms'] - 1) * 100:.1f} %",
            "<= 10 %",
            p_on["p50_ms"] <= p_off["p50_ms"] * 1.10,
        ),
        row("history memory per entry (bytes)", round(per_entry)),
    ]
    if http:
        for label in ("1/request", f"{args.rate}/s, 10/request"):
            h_off, h_on = http[f"off {label}"], http[f"on {label}"]
            rows += [
                row(
                    f"HTTP /v1/changes, {label}: p50 / p99 per request off vs on (ms)",
                    f"{h_off['p50_ms']:.2f} / {h_off['p99_ms']:.2f} vs {h_on['p50_ms']:.2f} / {h_on['p99_ms']:.2f}",
                ),
                row(
                    f"HTTP /v1/changes, {label}: mean per request slowdown with history",
                    f"{(h_on['mean_ms'] / h_off['mean_ms'] - 1) * 100:.1f} %",
                    "<= 10 %",
                    h_on["mean_ms"] <= h_off["mean_ms"] * 1.10,
                ),
            ]
    save_result(
        "history",
        {
            "description": "Intake (the record script, Ledger.record) with the change history on vs off; "
            "a Redis of its own; off and on alternate in blocks of 250 calls.",
            "scale": f"n={args.n}, rounds={args.rounds}, paced {args.rate}/s for {args.paced_s}s",
            "rows": rows,
            "raw": {"unpaced": results, "paced": paced, "http": http, "entries": entries},
        },
    )
    write_report()
    for r_ in rows:
        print(f"{r_['name']}: {r_['value']}" + (f"  (target {r_['target']}, met={r_['met']})" if r_["target"] else ""))
    return 0 if all(r_["met"] is not False for r_ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
