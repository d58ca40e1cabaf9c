"""Shared pieces of the hostile-input tests: known secrets, signed requests, the ledger check."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import redis

from config.settings import Settings
from producers.signatures import sign_shopify, sign_square, sign_standard

SQUARE_KEY = "sq-hostile-key-8d1f2a"
SHOPIFY_SECRET = "shpss-hostile-secret-55c0e1"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"hostile-standard-secret-bytes-01").decode()
STANDARD_SECRET_OLD = "whsec_" + base64.b64encode(b"hostile-standard-secret-bytes-00").decode()
API_TOKEN = "tok-hostile-9b7e3c41"
NOTIFICATION_URL = "https://menusync.example.com/webhooks/square"
BUSINESS = 398
STORE = {"brand_id": 5297, "branch_id": 1293}
MAX_BODY = 64 * 1024


def hostile_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_tokens": API_TOKEN,
        "square_signature_keys": SQUARE_KEY,
        "square_notification_url": NOTIFICATION_URL,
        "shopify_webhook_secrets": SHOPIFY_SECRET,
        "standard_webhook_secrets": f"{STANDARD_SECRET},{STANDARD_SECRET_OLD}",
        "webhook_max_body_bytes": MAX_BODY,
        "webhook_tolerance_s": 300,
    }
    values.update(overrides)
    return Settings(**values)


def canonical(change_id: str = "hostile-1", **change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": change_id,
        "kind": "availability",
        "level": "item",
        "entity_ids": [101],
        "enabled": False,
        "stores": [dict(STORE)],
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    body.update(change)
    return {"business_id": BUSINESS, "changes": [body]}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def standard_headers(
    body: bytes, msg_id: str = "msg_hostile_1", ts: int | None = None, secret: str = STANDARD_SECRET
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(body, msg_id, ts, secret),
    }


def square_headers(body: bytes, key: str = SQUARE_KEY) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-square-hmacsha256-signature": sign_square(body, NOTIFICATION_URL, key),
    }


def shopify_headers(body: bytes, secret: str = SHOPIFY_SECRET, event_id: str = "evt-hostile-1") -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-shopify-hmac-sha256": sign_shopify(body, secret),
        "x-shopify-topic": "inventory_levels/update",
        "x-shopify-event-id": event_id,
    }


def ledger_keys(r: redis.Redis, prefix: str) -> list[str]:
    """Every ledger key (desired values, versions, pending) under ``prefix``."""
    found: list[str] = []
    for name in ("desired", "dver", "pending"):
        found += [str(k) for k in r.scan_iter(match=f"{prefix}:{name}:*", count=1000)]
    return found


def assert_rejection_says_why(resp: Any) -> None:
    """A 4xx answer is JSON ``{"error": code, "detail": message}`` with both non-empty."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert isinstance(body, dict), resp.text[:300]
    assert body.get("error") and isinstance(body["error"], str), body
    assert body.get("detail"), body
