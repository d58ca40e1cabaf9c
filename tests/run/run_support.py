"""Helpers of the run tests: the stack's processes as subprocesses, on the test Redis under a prefix of their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devstack.embedded_redis import free_port
from devstack.sandbox.testing import SandboxAdmin
from devstack.stack import ServiceProcess, stack_env, write_credentials

BUSINESS = 398
STORES = ((5297, 1293), (5297, 5913), (1615, 1294))
API_TOKEN = "run-test-token-not-a-secret"


def env_for(tmp_path: Path, redis_url: str, prefix: str, sandbox: SandboxAdmin, **settings: Any) -> dict[str, str]:
    creds = write_credentials(
        tmp_path / "credentials.toml",
        {BUSINESS: sandbox.credentials(BUSINESS)},
        provider_ids=[1, 6],
    )
    settings.setdefault("api_tokens", API_TOKEN)
    settings.setdefault("sweep_stale_after_s", 1.0)
    settings.setdefault("sweep_interval_s", 0.5)
    return stack_env(redis_url=redis_url, prefix=prefix, klikit_url=sandbox.url, credentials_file=creds, **settings)


class Stack:
    """Started processes, stopped (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[ServiceProcess] = []
        self.web_url = ""

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ServiceProcess:
        proc = ServiceProcess(argv, env or self.env, log_path=self.logs / f"{name}-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    def start_web(self, argv: list[str]) -> ServiceProcess:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        proc = self.start("web", [*argv, "--port", str(port)])
        proc.wait_until(self.web_ready, timeout=30)
        return proc

    def web_ready(self) -> bool:
        try:
            return httpx.get(f"{self.web_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post_changes(self, changes: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(
            f"{self.web_url}/v1/changes",
            json={"business_id": BUSINESS, "changes": changes},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=10,
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate(timeout=15)

    def log_tail(self) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)


def availability(cid: str, items: list[int], enabled: bool, at: datetime, store: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "availability",
        "level": "item",
        "entity_ids": items,
        "enabled": enabled,
        "stores": [{"brand_id": store[0], "branch_id": store[1]}],
        "occurred_at": at.astimezone(UTC).isoformat(),
    }


def visibility(cid: str, item: int, flags: dict[str, bool], at: datetime, store: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "visibility",
        "level": "item",
        "entity_ids": [item],
        "visibilities": flags,
        "stores": [{"brand_id": store[0], "branch_id": store[1]}],
        "occurred_at": at.astimezone(UTC).isoformat(),
    }


def published_item(sandbox: SandboxAdmin, store: tuple[int, int], item: int) -> dict[str, Any] | None:
    state = sandbox.state(BUSINESS)["effective_published"]
    row: dict[str, Any] | None = state.get(f"{store[0]}:{store[1]}", {}).get("item", {}).get(str(item))
    return row


def publish_stores(sandbox: SandboxAdmin, stores: tuple[tuple[int, int], ...] = STORES) -> None:
    """Publish the stores once, as live stores are: store-mode getMenu then shows their menus, which
    menusync reads to compose a store's visibility map (the channels no change named)."""
    body = {"stores": [{"brandID": b, "branchID": br} for b, br in stores], "providerIDs": [1, 6]}
    with sandbox.client(BUSINESS) as http:
        response = http.post("/v1/partner/menus/publish", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    response.raise_for_status()
