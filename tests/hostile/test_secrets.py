"""No secret leaves through a log line, a dead letter or an error body.

Traffic goes through every path with known secrets: the three webhook sources (valid and invalid
signatures, bodies that carry a secret as a value), ``/v1/changes`` (valid token, wrong tokens that
are other secrets), and the pipeline's klikit writes with a known klikit secret (success, a 502
retried, a permanent 400 and a 401 dead-lettered). Then the captured logs (JSON lines at DEBUG), the
dead-letter store and every answer body are searched for each secret and for the Authorization
header values.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pytest
import structlog
from fastapi.testclient import TestClient
from hostile_support import (
    API_TOKEN,
    SHOPIFY_SECRET,
    SQUARE_KEY,
    STANDARD_SECRET,
    STANDARD_SECRET_OLD,
    canonical,
    dumps,
    hostile_settings,
    shopify_headers,
    square_headers,
    standard_headers,
)

from config.credentials import Credentials
from config.logging import configure_logging
from config.settings import Settings
from devstack.sandbox.testing import SandboxHandle, running_sandbox
from producers.app import create_app
from workers.runtime import reset_runtime

KLIKIT_PARTNER_KEY = "pk_hostile_398"
KLIKIT_SECRET = "sk-hostile-klikit-secret-7f3e9a"
BUSINESS = 398
STORES = [
    {"brand_id": 5297, "branch_id": 1293},
    {"brand_id": 5297, "branch_id": 5913},
    {"brand_id": 1615, "branch_id": 1294},
]


def forbidden() -> dict[str, str]:
    basic = base64.b64encode(f"{KLIKIT_PARTNER_KEY}:{KLIKIT_SECRET}".encode()).decode()
    out = {
        "klikit secret": KLIKIT_SECRET,
        "klikit Authorization header": basic,
        "API token": API_TOKEN,
        "square key": SQUARE_KEY,
        "shopify secret": SHOPIFY_SECRET,
        "standard secret": STANDARD_SECRET,
        "standard secret (old)": STANDARD_SECRET_OLD,
    }
    for name in ("standard secret", "standard secret (old)"):
        out[name + " key"] = out[name].removeprefix("whsec_")
    return out


def find_secrets(text: str) -> list[str]:
    return [name for name, value in forbidden().items() if value in text]


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox() as handle:
        handle.add_credential(KLIKIT_PARTNER_KEY, KLIKIT_SECRET, BUSINESS)
        yield handle


class _Buffer(io.StringIO):
    """A thread-safe text sink for every log line of the test."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)


@pytest.fixture
def logs() -> Iterator[_Buffer]:
    """Every structlog and stdlib log line (JSON, DEBUG and up, httpx included) goes to a buffer."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = _Buffer()
    real_stderr = sys.stderr
    sys.stderr = buffer  # configure_logging binds the stream it finds here
    try:
        configure_logging("json", "DEBUG")
    finally:
        sys.stderr = real_stderr
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_no_secret_in_logs_dead_letters_or_error_bodies(
    r: Any, run_prefix: str, sandbox: SandboxHandle, logs: _Buffer
) -> None:
    import workers.actors

    broker = workers.actors.broker
    broker.flush_all()
    rt = reset_runtime(Settings(klikit_base_url=sandbox.url))  # type: ignore[call-arg]
    rt.use_credentials(
        Credentials.from_mapping(
            {
                "business": {
                    str(BUSINESS): {
                        "partner_key": KLIKIT_PARTNER_KEY,
                        "secret_key": KLIKIT_SECRET,
                        "provider_ids": [1, 6],
                        "stores": STORES,
                    }
                }
            }
        )
    )
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    bodies: list[str] = []
    try:
        with TestClient(create_app(hostile_settings()), raise_server_exceptions=False) as client:

            def post(path: str, content: bytes, headers: dict[str, str]) -> Any:
                resp = client.post(path, content=content, headers=headers)
                bodies.append(resp.text)
                assert resp.status_code < 500, resp.text
                return resp

            bearer = {"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"}
            # 1. the canonical API: a change that is written and published
            assert post("/v1/changes", dumps(canonical(change_id="s-1", entity_ids=[101])), bearer).status_code == 202
            _wait(lambda: rt.ledger.pending_count(BUSINESS) == 0)
            # 2. a 502 retried, then a permanent 400: a dead letter with the request body
            sandbox.script(
                "PATCH", "/v1/partner/menus/items/enable", [{"status": 502, "code": "downstream_unavailable"}]
            )
            assert post("/v1/changes", dumps(canonical(change_id="s-2", entity_ids=[102])), bearer).status_code == 202
            # (three answers: a refused bulk write is split in halves, and each half must be refused too)
            refused = {"status": 400, "code": "request_invalid"}
            sandbox.script("PATCH", "/v1/partner/menus/items/enable", [refused] * 3)
            assert post("/v1/changes", dumps(canonical(change_id="s-3", entity_ids=[103])), bearer).status_code == 202
            _wait(lambda: rt.dead_letters.count() >= 1)
            # 3. wrong tokens that are other secrets, a body that carries secrets as values
            for token in (STANDARD_SECRET, KLIKIT_SECRET, SQUARE_KEY, API_TOKEN + "x"):
                resp = post("/v1/changes", dumps(canonical()), {"authorization": f"Bearer {token}"})
                assert resp.status_code == 401
            leaky = canonical(change_id=KLIKIT_SECRET, entity_ids=[API_TOKEN], level=SHOPIFY_SECRET)
            assert post("/v1/changes", dumps(leaky), bearer).status_code == 400
            # 4. the webhooks, valid and invalid, including secrets in the body and in signature headers
            body = dumps(canonical(change_id="s-4", entity_ids=[104]))
            assert post("/webhooks/standard", body, standard_headers(body, msg_id="msg_s4")).status_code == 202
            assert (
                post(
                    "/webhooks/standard", body, standard_headers(body, secret=STANDARD_SECRET_OLD, msg_id="msg_s5")
                ).status_code
                == 202
            )
            bad = standard_headers(body, msg_id="msg_s6")
            bad["webhook-signature"] = f"v1,{STANDARD_SECRET} v1,{API_TOKEN}"
            assert post("/webhooks/standard", body, bad).status_code == 401
            leaky_raw = dumps(leaky)
            assert (
                post("/webhooks/standard", leaky_raw, standard_headers(leaky_raw, msg_id="msg_s7")).status_code == 400
            )
            square = dumps(
                {
                    "type": "inventory.count.updated",
                    "event_id": "sq-s-1",
                    "merchant_id": "M",
                    "data": {
                        "object": {
                            "inventory_counts": [
                                {
                                    "catalog_object_id": "UNMAPPED",
                                    "location_id": "L",
                                    "state": "IN_STOCK",
                                    "quantity": "0",
                                    "calculated_at": datetime.now(UTC).isoformat(),
                                }
                            ]
                        }
                    },
                }
            )
            assert post("/webhooks/square", square, square_headers(square)).status_code == 202
            assert post("/webhooks/square", square, {"x-square-hmacsha256-signature": SQUARE_KEY}).status_code == 401
            shop = dumps(
                {"inventory_item_id": 1, "location_id": 2, "available": 0, "updated_at": datetime.now(UTC).isoformat()}
            )
            assert post("/webhooks/shopify", shop, shopify_headers(shop)).status_code == 202
            assert (
                post(
                    "/webhooks/shopify", shop, {**shopify_headers(shop), "x-shopify-hmac-sha256": SHOPIFY_SECRET}
                ).status_code
                == 401
            )
            _wait(lambda: rt.ledger.pending_count(BUSINESS) == 0)
            # 5. klikit refuses the credential: an auth dead letter, the business stops
            sandbox.script(
                "PATCH", "/v1/partner/menus/items/enable", [{"status": 401, "code": "auth_invalid_credentials"}]
            )
            assert post("/v1/changes", dumps(canonical(change_id="s-8", entity_ids=[108])), bearer).status_code == 202
            _wait(lambda: rt.dead_letters.count() >= 2)
    finally:
        worker.stop(timeout=10_000)
        rt.close()
        broker.flush_all()
        reset_runtime()
    dead = [json.dumps(d.model_dump()) for d in rt.dead_letters.list(limit=1000)]
    assert {json.loads(d)["error_code"] for d in dead} >= {"request_invalid"}, dead
    stored = [str(v) for k in r.scan_iter(match=f"{run_prefix}:dlq:*") if r.type(k) == "string" for v in [r.get(k)]]
    log_text = logs.getvalue()
    assert "klikit write applied" in log_text, "the logs were not captured"
    leaks = {
        "logs": find_secrets(log_text),
        "dead letters": find_secrets("\n".join(dead + stored)),
        "answer bodies": find_secrets("\n".join(bodies)),
    }
    assert leaks == {"logs": [], "dead letters": [], "answer bodies": []}
    assert "Basic " not in log_text and "Bearer " not in log_text
