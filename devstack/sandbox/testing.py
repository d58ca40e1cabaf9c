"""Run a sandbox for tests and benchmarks, and drive its admin API over real HTTP.

``running_sandbox(**options)`` starts uvicorn in a background thread on a free loopback port and
yields a ``SandboxHandle``; ``SandboxProcess(**options)`` runs ``python -m devstack.sandbox`` as a
subprocess instead. ``options`` are the seed and fault names of ``devstack.sandbox.config``
(``businesses``, ``stores_per_business``, ``items_per_business``, ``max_calls``, ``downstream_rate``,
``latency_ms``, ``hang_rate``, ``hang_s``, ``drop_rate``, ``drop_phase``, ``rate_per_minute``,
``rate_burst``, ``rate_limit_headers``, ``writes_only``, ``seed``/``fault_seed``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from devstack.sandbox.app import create_app
from devstack.sandbox.config import split_options
from devstack.sandbox.seed import default_credentials


class SandboxAdmin:
    """Helpers over the admin API of a sandbox at ``url`` (e.g. ``http://127.0.0.1:PORT``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._admin = httpx.Client(base_url=url, timeout=10.0)

    def credentials(self, business_id: int = 398) -> tuple[str, str]:
        """The seeded all-scopes ``(partner_key, secret_key)`` of a business."""
        return default_credentials(business_id)

    def client(self, business_id: int = 398, **kwargs: Any) -> httpx.Client:
        """An httpx client on this sandbox authenticated as the business's seeded credential."""
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.url, auth=self.credentials(business_id), **kwargs)

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"sandbox admin call failed: {response.status_code} {response.text}")
        return response.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge these fault fields into the current fault config; returns the new config."""
        result: dict[str, Any] = self._ok(self._admin.put("/_sandbox/faults", json=faults))
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self._admin.get("/_sandbox/faults"))
        return result

    def clear_faults(self) -> dict[str, Any]:
        """Back to the faults the sandbox was started with."""
        result: dict[str, Any] = self._ok(self._admin.delete("/_sandbox/faults"))
        return result

    def script(self, method: str, path: str, responses: list[dict[str, Any]], business_id: int | None = None) -> None:
        """Queue canned responses for the next matching calls (``{"status", "code", "message", "retry_after",
        "data", "drop"}`` each)."""
        body: dict[str, Any] = {"method": method, "path": path, "responses": responses}
        if business_id is not None:
            body["business_id"] = business_id
        self._ok(self._admin.post("/_sandbox/script", json=body))

    def clear_scripts(self) -> None:
        self._ok(self._admin.delete("/_sandbox/script"))

    def calls(self, since: int = 0, business_id: int | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since}
        if business_id is not None:
            params["business_id"] = business_id
        result: list[dict[str, Any]] = self._ok(self._admin.get("/_sandbox/calls", params=params))
        return result

    def clear_calls(self) -> None:
        self._ok(self._admin.delete("/_sandbox/calls"))

    def state(self, business_id: int = 398) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self._admin.get(f"/_sandbox/state/{business_id}"))
        return result

    def reset(self) -> None:
        self._ok(self._admin.post("/_sandbox/reset"))

    def tamper(
        self,
        business_id: int,
        level: str,
        entity_id: int,
        field: str,
        value: Any,
        store: tuple[int, int] | None = None,
        republish: bool = False,
    ) -> dict[str, Any]:
        """Edit klikit behind menusync's back (``store``: a store override, else the business row)."""
        body: dict[str, Any] = {
            "business_id": business_id,
            "level": level,
            "id": entity_id,
            "field": field,
            "value": value,
            "republish": republish,
        }
        if store is not None:
            body["store"] = {"brand_id": store[0], "branch_id": store[1]}
        result: dict[str, Any] = self._ok(self._admin.post("/_sandbox/tamper", json=body))
        return result

    def add_credential(
        self,
        partner_key: str,
        secret_key: str,
        business_id: int,
        scopes: list[str] | None = None,
        revoked: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "partner_key": partner_key,
            "secret_key": secret_key,
            "business_id": business_id,
            "revoked": revoked,
        }
        if scopes is not None:
            body["scopes"] = scopes
        result: dict[str, Any] = self._ok(self._admin.post("/_sandbox/credentials", json=body))
        return result

    def add_store(self, business_id: int, brand_id: int, branch_id: int, has_menu_rows: bool = False) -> None:
        body = {
            "business_id": business_id,
            "brand_id": brand_id,
            "branch_id": branch_id,
            "has_menu_rows": has_menu_rows,
        }
        self._ok(self._admin.post("/_sandbox/stores", json=body))

    def advance_clock(self, seconds: float) -> float:
        offset: float = self._ok(self._admin.post("/_sandbox/clock", json={"advance_s": seconds}))["offset_s"]
        return offset

    def healthy(self) -> bool:
        try:
            return self._admin.get("/_sandbox/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._admin.close()


class SandboxHandle(SandboxAdmin):
    """A sandbox served by uvicorn in a background thread of this process."""

    def __init__(self, url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
        super().__init__(url)
        self._server = server
        self._thread = thread

    def stop(self) -> None:
        self.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _bound_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def running_sandbox(**options: Any) -> Iterator[SandboxHandle]:
    """Start a sandbox with these seed and fault options; stop it on exit."""
    config = split_options(options)
    sock = _bound_socket()
    port = sock.getsockname()[1]
    server_config = uvicorn.Config(
        create_app(config), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(server_config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"klikit-sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("sandbox did not start")
        time.sleep(0.01)
    handle = SandboxHandle(f"http://127.0.0.1:{port}", server, thread)
    try:
        yield handle
    finally:
        handle.stop()
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def options_to_argv(options: dict[str, Any]) -> list[str]:
    """CLI flags for the given seed and fault options (checked first)."""
    split_options(options)
    argv: list[str] = []
    for name, value in options.items():
        flag = "--fault-seed" if name in ("seed", "fault_seed") else "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        argv.extend([flag] if value is True else [flag, str(value)])
    return argv


class SandboxProcess(SandboxAdmin):
    """A sandbox in a subprocess (``python -m devstack.sandbox``); usable as a context manager."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", **options: Any) -> None:
        self.port = port or free_port(host)
        self.host = host
        self.argv = [sys.executable, "-m", "devstack.sandbox", "--host", host, "--port", str(self.port)]
        self.argv += options_to_argv(options)
        self.proc: subprocess.Popen[bytes] | None = None
        super().__init__(f"http://{host}:{self.port}")

    def start(self, timeout: float = 20.0) -> SandboxProcess:
        env = dict(os.environ)
        self.proc = subprocess.Popen(self.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"sandbox process exited with {self.proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox process did not answer in time")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        self.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Hard stop (SIGKILL), for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
