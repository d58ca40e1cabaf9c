"""What every benchmark shares: a Redis under a fresh prefix, the sandbox, worker processes, numbers.

A benchmark runs in its own process (``python -m bench.<name>``). :class:`BenchStack` brings up
the pieces it asks for, all as subprocesses on loopback (``devstack/stack.py``), and tears them down
and deletes every Redis key under its prefix afterwards. Results are JSON under ``bench/results/``;
:func:`write_report` renders ``bench/results/REPORT.md`` from every result file present.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from config.redis import Keys, connect, delete_prefix
from devstack.embedded_redis import EmbeddedRedis, ensure_redis
from devstack.sandbox.seed import default_credentials
from devstack.sandbox.testing import SandboxProcess
from devstack.stack import SCHEDULER_ARGV, WEB_ARGV, WORKER_ARGV, ServiceProcess, stack_env, write_credentials

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Production timings (config/settings.py defaults), written out so that a report says what was in force.
PRODUCTION_TIMINGS: dict[str, Any] = {
    "flush_window_ms": 100,
    "publish_quiet_ms": 3_000,
    "publish_max_wait_ms": 30_000,
}

#: Dramatiq's worker cannot see an idle moment for a while after start; wait for the consumers.
WORKER_BOOT_S = 3.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class RssSampler:
    """Samples the resident set size of process trees in a background thread."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.roots: list[Callable[[], int | None]] = []
        self.peak_per_process_mb = 0.0
        self.peak_total_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def watch(self, pid_of: Callable[[], int | None]) -> None:
        self.roots.append(pid_of)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        total = 0.0
        for pid_of in self.roots:
            pid = pid_of()
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    mb = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += mb
                self.peak_per_process_mb = max(self.peak_per_process_mb, mb)
        self.peak_total_mb = max(self.peak_total_mb, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return {
            "peak_worker_process_rss_mb": round(self.peak_per_process_mb, 1),
            "peak_worker_total_rss_mb": round(self.peak_total_mb, 1),
        }


@dataclass
class BenchStack:
    """Redis (REDIS_URL if it answers, else embedded), the sandbox and menusync processes, one prefix."""

    name: str
    sandbox_options: dict[str, Any] = field(default_factory=dict)
    businesses: Sequence[int] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    credential_extra: dict[str, Any] = field(default_factory=lambda: {"provider_ids": [1, 6]})
    prefix: str = ""
    redis_url: str = ""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="menusync-bench-")))
    sandbox: SandboxProcess | None = None
    workers: list[ServiceProcess] = field(default_factory=list)
    services: list[ServiceProcess] = field(default_factory=list)
    web_url: str = ""
    _embedded: EmbeddedRedis | None = None
    _env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefix = self.prefix or f"msbench-{self.name}-{uuid.uuid4().hex[:8]}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> BenchStack:
        self.redis_url, self._embedded = ensure_redis(
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), data_dir=self.workdir / "redis"
        )
        self.sandbox = SandboxProcess(**self.sandbox_options).start(timeout=60)
        creds = {b: default_credentials(b) for b in self.businesses}
        credentials_file = write_credentials(self.workdir / "credentials.toml", creds, **self.credential_extra)
        self._env = stack_env(
            redis_url=self.redis_url,
            prefix=self.prefix,
            klikit_url=self.sandbox.url,
            credentials_file=credentials_file,
            **self.settings,
        )
        return self

    @property
    def env(self) -> dict[str, str]:
        return dict(self._env)

    def adopt_env(self) -> None:
        """Make this process's own settings (submit_changes, the actors' broker) point at the stack.

        Call before anything imports ``workers.actors``: its broker is built from the environment.
        """
        os.environ.update(self._env)
        from config.settings import get_settings

        get_settings.cache_clear()

    def start_workers(
        self,
        count: int = 1,
        argv: Sequence[str] = WORKER_ARGV,
        label: str = "worker",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**self._env, **(extra_env or {})}
        for i in range(count):
            log = self.workdir / f"{label}-{len(self.workers) + i}.log"
            self.workers.append(ServiceProcess(argv, env, log_path=log).start())
        time.sleep(WORKER_BOOT_S)
        for w in self.workers:
            if not w.alive():
                raise RuntimeError(f"{w!r} exited at start; see {w.log_path}")

    def start_scheduler(self) -> ServiceProcess:
        proc = ServiceProcess(SCHEDULER_ARGV, self._env, log_path=self.workdir / "scheduler.log").start()
        self.services.append(proc)
        return proc

    def start_web(self, extra_env: dict[str, str] | None = None) -> str:
        import httpx

        port = free_port()
        env = {**self._env, **(extra_env or {})}
        proc = ServiceProcess([*WEB_ARGV, "--port", str(port)], env, log_path=self.workdir / "web.log").start()
        self.services.append(proc)
        self.web_url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(self.web_url + "/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        proc.wait_until(ready, timeout=30)
        return self.web_url

    def stop(self) -> None:
        for proc in [*self.workers, *self.services]:
            with contextlib.suppress(Exception):
                proc.terminate(timeout=10)
        self.workers.clear()
        self.services.clear()
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                self.sandbox.stop()
        if self.redis_url:
            with contextlib.suppress(Exception):
                client = connect(self.redis_url)
                delete_prefix(client, self.prefix)
                client.close()
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> BenchStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation -------------------------------------------------------------------------------

    def redis(self) -> Any:
        return connect(self.redis_url)

    @property
    def k(self) -> Keys:
        """The stack's key names (``config.redis.Keys`` under its prefix)."""
        return Keys(self.prefix)

    def unsettled(self, businesses: Iterable[int] | None = None) -> list[int]:
        """Businesses with pending targets, a scheduled flush, a pending publish or a held lease."""
        r = self.redis()
        try:
            ids = list(businesses if businesses is not None else self.businesses)
            pipe = r.pipeline(transaction=False)
            for b in ids:
                pipe.zcard(self.k.business(b, "pending"))
                pipe.exists(self.k.business(b, "flush", "scheduled"))
                pipe.exists(self.k.business(b, "publish"))
                pipe.exists(self.k.business(b, "lease"))
            replies = pipe.execute()
        finally:
            r.close()
        return [b for i, b in enumerate(ids) if any(replies[4 * i : 4 * i + 4])]

    def wait_settled(self, timeout: float, businesses: Iterable[int] | None = None) -> float:
        """Seconds until every business settled (raises ``TimeoutError`` after ``timeout``)."""
        started = time.monotonic()
        ids = list(businesses if businesses is not None else self.businesses)
        while True:
            left = self.unsettled(ids)
            if not left:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{len(left)} businesses not settled after {timeout}s: {left[:10]}")
            time.sleep(0.1)

    def calls(self) -> list[dict[str, Any]]:
        assert self.sandbox is not None
        return self.sandbox.calls()


def is_publish(call: dict[str, Any]) -> bool:
    return str(call["path"]).endswith("/publish")


def is_write(call: dict[str, Any]) -> bool:
    return call["method"] in ("PATCH", "POST") and not is_publish(call)


def is_read(call: dict[str, Any]) -> bool:
    """A partner GET: ``getMenu`` (read-back) or the store list."""
    return call["method"] == "GET"


def is_get_menu(call: dict[str, Any]) -> bool:
    return call["method"] == "GET" and str(call["path"]).endswith("/menus")


def ok(call: dict[str, Any]) -> bool:
    return call["status"] is not None and 200 <= int(call["status"]) < 300


def call_summary(calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    writes = [c for c in calls if is_write(c)]
    publishes = [c for c in calls if is_publish(c)]
    return {
        "write_attempts": len(writes),
        "writes_ok": sum(ok(c) for c in writes),
        "publish_attempts": len(publishes),
        "publishes_ok": sum(ok(c) for c in publishes),
        "status_429": sum(c["status"] == 429 for c in calls),
        "status_5xx": sum((c["status"] or 0) >= 500 for c in calls),
        "applied_twice": applied_twice(calls),
    }


def voided_reads(calls: Sequence[dict[str, Any]]) -> int:
    """Successful getMenu calls of one business made after a write that no publish has followed yet.

    menusync discards such a read-back (the reading no longer describes the ledger: ``busy``), so
    these reads cost budget and repair nothing. Estimated from the call record's arrival times.
    """
    voided = 0
    wrote_since_publish = False
    for c in sorted(calls, key=lambda c: float(c["ts"])):
        if not ok(c):
            continue
        if is_publish(c):
            wrote_since_publish = False
        elif is_write(c):
            wrote_since_publish = True
        elif is_get_menu(c) and wrote_since_publish:
            voided += 1
    return voided


def read_share(calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """getMenu calls against every partner call (each takes one request of the credential's rate budget).

    Answers ``overall`` and ``per_business`` (``calls``, ``get_menu``, ``get_menu_ok``, ``other_reads``,
    ``publishes_ok``, ``voided`` (see :func:`voided_reads`), ``share`` = get_menu / calls) and the
    highest per-business share.
    """

    def tally(group: Sequence[dict[str, Any]], voided: int) -> dict[str, Any]:
        reads = [c for c in group if is_get_menu(c)]
        return {
            "calls": len(group),
            "get_menu": len(reads),
            "get_menu_ok": sum(ok(c) for c in reads),
            "other_reads": sum(is_read(c) and not is_get_menu(c) for c in group),
            "publishes_ok": sum(is_publish(c) and ok(c) for c in group),
            "voided": voided,
            "share": round(len(reads) / len(group), 4) if group else 0.0,
        }

    by_business: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        by_business.setdefault(str(c.get("business_id")), []).append(c)
    per_business = {b: tally(group, voided_reads(group)) for b, group in sorted(by_business.items())}
    return {
        "overall": tally(calls, sum(t["voided"] for t in per_business.values())),
        "per_business": per_business,
        "max_business_share": max((t["share"] for t in per_business.values()), default=0.0),
    }


def applied_twice(calls: Sequence[dict[str, Any]]) -> int:
    seen: dict[str, int] = {}
    for c in calls:
        if c.get("applied") and c.get("idempotency_key"):
            seen[c["idempotency_key"]] = seen.get(c["idempotency_key"], 0) + 1
    return sum(1 for n in seen.values() if n > 1)


def enable_targets(call: dict[str, Any]) -> list[tuple[tuple[int, int] | None, int, bool]]:
    """(store, item id, value) of each target an applied enable call carries."""
    body = call.get("body") or {}
    if not isinstance(body, dict) or "ids" not in body or "isEnabled" not in body:
        return []
    zones = body.get("zoneStores") or []
    stores: list[tuple[int, int] | None] = [(z["brandID"], z["branchID"]) for z in zones] or [None]
    return [(s, int(i), bool(body["isEnabled"])) for s in stores for i in body["ids"]]


def change_to_write_latencies(
    changes: Sequence[tuple[float, int, tuple[int, int], int, bool]], calls: Sequence[dict[str, Any]]
) -> list[float]:
    """Seconds from each change being sent to the first successful write carrying its target and value after it.

    ``changes``: (sent at, business, store, item, value). A change superseded before its write is
    measured to the write of the value that replaced it when that value is the same, and otherwise
    dropped (a superseded change has no write of its own).
    """
    return [latency for _, latency in change_to_write_pairs(changes, calls)]


def change_to_write_pairs(
    changes: Sequence[tuple[float, int, tuple[int, int], int, bool]], calls: Sequence[dict[str, Any]]
) -> list[tuple[float, float]]:
    """(sent at, seconds to its write) of each change :func:`change_to_write_latencies` measures."""
    index: dict[tuple[int, tuple[int, int] | None, int, bool], list[float]] = {}
    for c in calls:
        if not (is_write(c) and ok(c)):
            continue
        for store, item, value in enable_targets(c):
            index.setdefault((int(c["business_id"]), store, item, value), []).append(float(c["ts"]))
    for times in index.values():
        times.sort()
    out: list[tuple[float, float]] = []
    import bisect

    for sent, business, store, item, value in changes:
        found = index.get((business, store, item, value))
        if not found:
            continue
        j = bisect.bisect_left(found, sent)
        if j < len(found):
            out.append((sent, found[j] - sent))
    return out


def write_to_publish_latencies(calls: Sequence[dict[str, Any]]) -> list[float]:
    """Per successful publish: seconds since the last successful write of its business before it."""
    last_write: dict[int, float] = {}
    out: list[float] = []
    for c in sorted(calls, key=lambda c: c["seq"]):
        b = c["business_id"]
        if not ok(c):
            continue
        if is_write(c):
            last_write[b] = float(c["ts"])
        elif is_publish(c) and b in last_write:
            out.append(float(c["ts"]) - last_write.pop(b))
    return out


def flush_window_lower_bound(events: Sequence[tuple[float, Any, Any]], window_s: float) -> tuple[int, int]:
    """The fewest writes a pipeline with this flush window can make, and its window count.

    ``events``: (time, target, group) sorted by time; ``group`` is what one call can share
    (value and store for an enable). A window opens at the first change after the previous one
    closed and coalesces every change within ``window_s``; it needs one call per group among the
    final values of the targets it saw.
    """
    calls = windows = 0
    i = 0
    n = len(events)
    while i < n:
        start = events[i][0]
        latest: dict[Any, Any] = {}
        while i < n and events[i][0] <= start + window_s:
            latest[events[i][1]] = events[i][2]
            i += 1
        calls += len(set(latest.values()))
        windows += 1
    return calls, windows


def flush_rounds(times: Sequence[float], gap_s: float = 0.03) -> list[list[float]]:
    """Group write times into rounds: a gap longer than ``gap_s`` starts a new one."""
    rounds: list[list[float]] = []
    for t in sorted(times):
        if rounds and t - rounds[-1][-1] <= gap_s:
            rounds[-1].append(t)
        else:
            rounds.append([t])
    return rounds


def publish_lower_bound(times: Sequence[float], quiet_s: float, max_wait_s: float) -> int:
    """Publishes one business needs at least: one per quiet-separated burst, plus one per ``max_wait`` of it."""
    if not times:
        return 0
    ordered = sorted(times)
    total = 0
    burst_start = prev = ordered[0]
    for t in ordered[1:]:
        if t - prev >= quiet_s:
            total += 1 + int((prev - burst_start) // max_wait_s)
            burst_start = t
        prev = t
    total += 1 + int((prev - burst_start) // max_wait_s)
    return total


# -- results ---------------------------------------------------------------------------------------


#: Upper edges (s) of the latency histogram bins: log-spaced from 10 ms to about 17 minutes.
LATENCY_BIN_EDGES_S: tuple[float, ...] = tuple(round(0.01 * 10 ** (i / 10), 4) for i in range(51))


def latency_histogram(values: Sequence[float]) -> dict[str, list[float] | list[int]]:
    """Counts of ``values`` per bin of :data:`LATENCY_BIN_EDGES_S` (the last bin takes the rest)."""
    import bisect

    counts = [0] * len(LATENCY_BIN_EDGES_S)
    for v in values:
        counts[min(bisect.bisect_left(LATENCY_BIN_EDGES_S, v), len(counts) - 1)] += 1
    return {"upper_edges_s": list(LATENCY_BIN_EDGES_S), "counts": counts}


def save_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    result.setdefault("machine", machine())
    result.setdefault("load_average_at_end", [round(x, 2) for x in os.getloadavg()])
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    write_report()
    return path


def load_results() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if RESULTS_DIR.is_dir():
        for path in sorted(RESULTS_DIR.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                out[path.stem] = json.loads(path.read_text())
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_report() -> Path:
    """``bench/results/REPORT.md``: the machine and one table per benchmark result present."""
    results = load_results()
    lines = ["# menusync benchmark report", ""]
    any_machine: dict[str, Any] = next((r["machine"] for r in results.values() if r.get("machine")), machine())
    lines += [
        "Machine: "
        + f"{any_machine.get('nproc')} CPUs ({any_machine.get('cpu_model')}), "
        + f"{any_machine.get('memory_gb')} GB memory, Python {any_machine.get('python')}, "
        + f"{any_machine.get('platform')}.",
        "",
        "Every table comes from one run of its benchmark (`python -m bench.<name>`; `make bench` runs them all) "
        "on that machine, finished at the time it states; every load goes to loopback only. Each table lists "
        "the measurements, the target where the issue sets one, and whether it was met.",
        "",
    ]
    summary = RESULTS_DIR / "summary.md"
    if summary.is_file():  # hand-written reading of the numbers, kept next to them
        lines += [summary.read_text().strip(), ""]
    targets = [(name, r) for name, result in results.items() for r in result.get("rows", []) if r.get("target")]
    if targets:
        lines += [
            "## Targets at a glance",
            "",
            "| benchmark | measurement | value | target | met |",
            "|---|---|---|---|---|",
        ]
        for name, r in targets:
            met = r.get("met")
            lines.append(
                f"| {name} | {r['name']} | {fmt(r.get('value'))} | {r['target']} | "
                f"{'' if met is None else ('yes' if met else '**no**')} |"
            )
        lines.append("")
    lines += readback_section(results)
    for name, result in results.items():
        lines.append(f"## {name}")
        lines.append("")
        if result.get("description"):
            lines += [str(result["description"]), ""]
        if result.get("scale"):
            lines += [f"Scale: {result['scale']}", ""]
        lines += ["| measurement | value | target | met |", "|---|---|---|---|"]
        for row in result.get("rows", []):
            met = row.get("met")
            lines.append(
                f"| {row['name']} | {fmt(row.get('value'))} | {row.get('target') or ''} | "
                f"{'' if met is None else ('yes' if met else '**no**')} |"
            )
        if result.get("notes"):
            lines.append("")
            lines += [f"- {note}" for note in result["notes"]]
        load = result.get("load_average_at_end")
        lines += [
            "",
            f"Finished {result.get('finished_at')} (load average 1/5/15 min at the end: {load}); raw numbers in "
            f"`bench/results/{name}.json`.",
            "",
        ]
    path = RESULTS_DIR / "REPORT.md"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def _machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m.get('nproc')} CPUs ({m.get('cpu_model')}), {m.get('memory_gb')} GB memory, Python {m.get('python')}, "
        f"{m.get('platform')}"
    )


def _p50_p99(d: dict[str, Any] | None) -> str:
    if not d or d.get("p50") is None:
        return "–"
    return f"{d['p50']:.2f} / {d['p99']:.2f} s"


def readback_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """The "Read-back" section: repair latencies and read cost (``drift``) and the lunch rush's read share."""
    drift = results.get("drift")
    rushes = [
        (name, r)
        for name, r in results.items()
        if name.startswith("lunch_rush") and (r.get("raw") or {}).get("menusync", {}).get("reads")
    ]
    if not drift and not rushes:
        return []
    lines = ["## Read-back", ""]
    lines += [
        "How soon menusync puts back what was changed in klikit behind its back, and what reading klikit back "
        "costs (issue 9, section 4). Reported, never asserted.",
        "",
        "| figure | value | samples / basis |",
        "|---|---|---|",
    ]
    if drift:
        raw = drift.get("raw") or {}
        a, b = raw.get("a_publish_to_repaired_s") or {}, raw.get("b_tamper_to_repaired_s") or {}
        detect, repair = raw.get("b_tamper_to_read_s") or {}, raw.get("b_read_to_repaired_s") or {}
        model = raw.get("model_default_interval") or {}
        share_a = ((raw.get("a") or {}).get("calls") or {}).get("overall") or {}
        lines += [
            f"| (a) drift before a publish, default settings: publish -> menusync's value published again, "
            f"p50 / p99 | {_p50_p99(a)} | {a.get('n', 0)} samples |",
            f"| (b) drift after a publish, read-back every {fmt(raw.get('b_interval_s'))} s: tamper -> menusync's "
            f"value published again, p50 / p99 | {_p50_p99(b)} | {b.get('n', 0)} samples |",
            "| (b) of which: tamper -> the periodic read that found it; that read -> repaired publish, p50 / p99 | "
            f"{_p50_p99(detect)}; "
            f"{_p50_p99(repair)} | {repair.get('n', 0)} samples |",
            f"| (b) for the {fmt(model.get('interval_s'))} s default: mean / worst tamper -> repaired | "
            f"~{fmt(model.get('mean_s'))} / ~{fmt(model.get('worst_s'))} s | computed: half the period (interval + "
            "sweep lag) on average, up to the whole, plus the repair measured in (b); the same model at the (b) "
            f"period: {fmt(model.get('same_model_at_measured_interval_mean_s'))} s, measured mean "
            f"{fmt(model.get('measured_mean_s'))} s |",
            f"| (c) getMenu calls per successful publish in (a) | {fmt(raw.get('reads_per_publish_a'))} | "
            f"{fmt(share_a.get('get_menu'))} getMenu / {fmt(share_a.get('publishes_ok'))} publishes |",
            f"| periodic read calls per minute per credential, {fmt(model.get('interval_s'))} s default | "
            f"{fmt(raw.get('periodic_read_calls_per_minute_per_credential_default'))} | computed: 3 getMenu + "
            "2 store-list calls per period |",
        ]
    for name, r in rushes:
        reads = r["raw"]["menusync"]["reads"]
        overall = reads["overall"]
        met = overall["share"] <= 0.10 and reads["max_business_share"] <= 0.10
        lines.append(
            f"| {name} ({r.get('scale')}): getMenu / all klikit calls, overall; highest business | "
            f"{100 * overall['share']:.2f} %; {100 * reads['max_business_share']:.2f} % (target <= 10 %: "
            f"{'met' if met else '**not met**'}) | {overall['get_menu']:,} of {overall['calls']:,} calls, "
            f"{len(reads['per_business'])} businesses; {overall.get('voided', 0):,} of {overall['get_menu_ok']:,} "
            "successful getMenu came after a write not yet published (reading discarded as busy) |"
        )
    lines.append("")
    for name, r in ([("drift", drift)] if drift else []) + rushes:
        wall = (r.get("raw") or {}).get("wall_s")
        lines.append(
            f"- `{name}`: finished {r.get('finished_at')}"
            + (f" after {wall:.0f} s" if wall else "")
            + f" on {_machine_line(r.get('machine') or {})}; load average at the end {r.get('load_average_at_end')}."
        )
    lines.append("")
    return lines


def row(name: str, value: Any, target: str | None = None, met: bool | None = None) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "met": met}


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


def bench_main(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]]) -> None:
    """A benchmark's ``main``: run it, save the result under ``args.name``, print its rows."""
    result = run(args)
    path = save_result(args.name, result)
    for r in result["rows"]:
        print(f"{r['name']}: {r['value']}  {r.get('target') or ''}")
    print(f"written {path}")


def paced(schedule: Sequence[tuple[float, Any]], send: Callable[[Any], object]) -> list[float]:
    """Call ``send(payload)`` at each (offset s, payload) of ``schedule``; answers the wall time of each call."""
    sent: list[float] = []
    start = time.monotonic()
    for offset, payload in schedule:
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent.append(time.time())
        send(payload)
    return sent


def pid_of(proc: Any) -> Callable[[], int | None]:
    def pid() -> int | None:
        return proc.pid  # type: ignore[no-any-return]

    return pid
