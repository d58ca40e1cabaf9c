"""The webhook receiver and the canonical API, on real Redis and the real ledger."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import structlog
from fastapi.testclient import TestClient
from producer_helpers import (
    ALL_SECRETS,
    API_TOKENS,
    BUSINESS,
    NOTIFICATION_URL,
    SHOPIFY_SECRETS,
    SQUARE_KEYS,
    STANDARD_SECRETS,
    STORE,
    canonical_body,
    dumps,
    make_settings,
    shopify_level,
    square_event,
)
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from config.redis import Keys
from config.settings import Settings, load_settings
from producers.app import create_app
from producers.review import list_review
from producers.timers import Timers
from workers.changes import Store, Target
from workers.ledger import Ledger


def target(entity: int, store: tuple[int, int] | None = STORE) -> Target:
    return Target(
        business_id=BUSINESS,
        store=Store(brand_id=store[0], branch_id=store[1]) if store else None,
        level="item",
        entity_id=entity,
        field="enabled",
    )


def post_square(client: TestClient, body: bytes, key: str = SQUARE_KEYS[0], **headers: str) -> Any:
    sig = base64.b64encode(hmac.new(key.encode(), NOTIFICATION_URL.encode() + body, hashlib.sha256).digest()).decode()
    return client.post(
        "/webhooks/square",
        content=body,
        headers={"content-type": "application/json", "x-square-hmacsha256-signature": sig, **headers},
    )


def post_shopify(
    client: TestClient,
    body: bytes,
    *,
    secret: str = SHOPIFY_SECRETS[0],
    event_id: str | None = "b54557e4-8a5f-4f7d-9a0c-d043a1b2c3d4",
    topic: str = "inventory_levels/update",
) -> Any:
    headers = {
        "content-type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": "wh-" + (event_id or "none"),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }
    if event_id:
        headers["X-Shopify-Event-Id"] = event_id
    return client.post("/webhooks/shopify", content=body, headers=headers)


def post_standard(
    client: TestClient, body: bytes, *, secret: str = STANDARD_SECRETS[0], msg_id: str = "msg_1", ts: int | None = None
) -> Any:
    ts = int(time.time()) if ts is None else ts
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sig,
    }
    return client.post("/webhooks/standard", content=body, headers=headers)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Square -------------------------------------------------------------------------------------------


def test_square_sold_out_disables_and_restock_enables(client: TestClient, ledger: Ledger) -> None:
    resp = post_square(client, dumps(square_event(quantity="0")))
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 1, "superseded": 0, "duplicate": 0, "unmapped": 0}
    value, version = ledger.desired(target(101))  # type: ignore[misc]
    assert value is False

    resp = post_square(
        client, dumps(square_event(event_id="evt-2", quantity="12.5", calculated_at=None)), SQUARE_KEYS[1]
    )
    assert resp.status_code == 202
    value2, version2 = ledger.desired(target(101))  # type: ignore[misc]
    assert value2 is True and version2 > version


def test_square_duplicate_answers_200_and_records_nothing(client: TestClient, ledger: Ledger) -> None:
    body = dumps(square_event())
    assert post_square(client, body).status_code == 202
    before = ledger.desired(target(101))
    stats = ledger.stats(BUSINESS)
    resp = post_square(client, body)
    assert resp.status_code == 200 and resp.json()["duplicate"] is True
    assert ledger.desired(target(101)) == before
    assert ledger.stats(BUSINESS) == stats


def test_square_other_states_and_types_are_ignored(client: TestClient, ledger: Ledger) -> None:
    resp = post_square(client, dumps(square_event(state="SOLD")))
    assert resp.status_code == 200 and "ignored" in resp.json()
    other = {
        "merchant_id": "M",
        "type": "catalog.version.updated",
        "event_id": "e-9",
        "created_at": "2024-01-01T00:00:00Z",
        "data": {"type": "catalog", "object": {"catalog_version": {"updated_at": "2024-01-01T00:00:00Z"}}},
    }
    resp = post_square(client, dumps(other))
    assert resp.status_code == 200 and resp.json()["ignored"] == "event type catalog.version.updated"
    assert ledger.desired(target(101)) is None


def test_square_unmapped_is_accepted_kept_and_counted(client: TestClient, r: redis.Redis, keys: Keys) -> None:
    before = metric("menusync_unmapped_events_total", source="square")
    body = dumps(square_event(event_id="evt-unmapped", catalog_object_id="UNKNOWNVARIATION"))
    resp = post_square(client, body)
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 0, "superseded": 0, "duplicate": 0, "unmapped": 1}
    rows = list_review(r, keys)
    assert len(rows) == 1
    _, fields = rows[0]
    assert fields["kind"] == "unmapped" and fields["source"] == "square" and fields["event_id"] == "evt-unmapped"
    assert "UNKNOWNVARIATION" in fields["reason"]
    assert json.loads(fields["raw"]) == json.loads(body)
    assert metric("menusync_unmapped_events_total", source="square") == before + 1
    # a redelivery is a duplicate: kept once
    assert post_square(client, body).status_code == 200
    assert len(list_review(r, keys)) == 1


def test_square_location_unmapped(client: TestClient, r: redis.Redis, keys: Keys) -> None:
    resp = post_square(client, dumps(square_event(event_id="e-loc", location_id="NOWHERE")))
    assert resp.json()["unmapped"] == 1
    assert "location NOWHERE has no mapping" in list_review(r, keys)[0][1]["reason"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda e: e["data"]["object"]["inventory_counts"][0].update(quantity="lots"),
            "data.object.inventory_counts[0].quantity",
        ),
        (
            lambda e: e["data"]["object"]["inventory_counts"][0].pop("location_id"),
            "data.object.inventory_counts[0].location_id",
        ),
        (
            lambda e: e["data"]["object"]["inventory_counts"][0].update(calculated_at="2024-01-01T00:00:00"),
            "data.object.inventory_counts[0].calculated_at",
        ),
        (lambda e: e.pop("event_id"), "event_id"),
        (lambda e: e["data"].pop("object"), "data.object"),
    ],
)
def test_square_schema_invalid_names_the_field(client: TestClient, mutate: Any, field: str) -> None:
    event = square_event()
    mutate(event)
    resp = post_square(client, dumps(event))
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_body"
    assert field in body["detail"]
    assert any(f["field"] == field for f in body["fields"])


def test_square_malformed_json_is_400(client: TestClient) -> None:
    resp = post_square(client, b'{"type": "inventory.count.updated", ')
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_body" and "JSON" in resp.json()["detail"]


def test_square_bad_signature_is_401_and_verified_before_parsing(client: TestClient, ledger: Ledger) -> None:
    resp = post_square(client, dumps(square_event()), key="not-the-key")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    resp = post_square(client, b"not json at all", key="not-the-key")
    assert resp.status_code == 401  # not 400: nothing is parsed before the signature holds
    resp = client.post("/webhooks/square", content=dumps(square_event()))
    assert resp.status_code == 401 and "missing" in resp.json()["detail"]
    assert ledger.desired(target(101)) is None


def test_body_too_large_is_413_by_header_and_by_bytes(r: redis.Redis, mappings: Any) -> None:
    settings = make_settings(webhook_max_body_bytes=1000)
    with TestClient(create_app(settings)) as client:
        big = dumps(square_event()) + b" " * 1000
        resp = post_square(client, big)
        assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"

        def chunks():  # no Content-Length: chunked transfer, the limit applies to the bytes read
            for _ in range(20):
                yield b" " * 100

        resp = client.post("/webhooks/standard", content=chunks(), headers={"webhook-id": "x"})
        assert resp.status_code == 413
        resp = client.post("/v1/changes", content=chunks(), headers={"authorization": f"Bearer {API_TOKENS[0]}"})
        assert resp.status_code == 413


def test_unknown_source_is_404(client: TestClient) -> None:
    resp = client.post("/webhooks/toast", content=b"{}")
    assert resp.status_code == 404
    assert resp.json()["error"] == "unknown_source"
    assert client.get("/nope").json()["error"] == "not_found"


def test_intake_routes_answer_as_fastapi_routed_them(client: TestClient, ledger: Ledger) -> None:
    """The intake routes are answered straight from the ASGI call (``ReceiverApp``): every other
    method and path spelling still goes through FastAPI's router, with the same answers as before,
    and the routes stay in the OpenAPI document."""
    assert client.get("/v1/changes").status_code == 405
    assert client.get("/v1/changes").json()["error"] == "method_not_allowed"
    assert client.get("/webhooks/standard").json()["error"] == "method_not_allowed"
    nested = client.post("/webhooks/standard/extra", content=b"{}")
    assert nested.status_code == 404 and nested.json()["error"] == "not_found"
    slash = client.post("/v1/changes/", json=canonical_body(), headers=auth(API_TOKENS[1]), follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"].endswith("/v1/changes")
    assert ledger.desired(target(101)) is None  # the redirect recorded nothing
    resp = client.post("/v1/changes", json=canonical_body(), headers=auth(API_TOKENS[1]))
    assert resp.status_code == 202 and resp.headers["content-type"] == "application/json", resp.text
    assert resp.headers["content-length"] == str(len(resp.content))
    assert {"/v1/changes", "/webhooks/{source}"} <= set(client.get("/openapi.json").json()["paths"])


# Shopify ------------------------------------------------------------------------------------------


def test_shopify_level_update_and_duplicate(client: TestClient, ledger: Ledger) -> None:
    body = dumps(shopify_level(available=0))
    resp = post_shopify(client, body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 1
    assert ledger.desired(target(102))[0] is False  # type: ignore[index]
    stats = ledger.stats(BUSINESS)
    assert post_shopify(client, body).status_code == 200
    assert ledger.stats(BUSINESS) == stats
    resp = post_shopify(client, dumps(shopify_level(available=3)), event_id="evt-3", secret=SHOPIFY_SECRETS[1])
    assert resp.status_code == 202
    assert ledger.desired(target(102))[0] is True  # type: ignore[index]


def test_shopify_untracked_counts_as_in_stock(client: TestClient, ledger: Ledger) -> None:
    assert post_shopify(client, dumps(shopify_level(available=None))).status_code == 202
    assert ledger.desired(target(102))[0] is True  # type: ignore[index]


def test_shopify_rejections(client: TestClient) -> None:
    body = dumps(shopify_level())
    assert post_shopify(client, body, secret="wrong-secret").status_code == 401
    resp = post_shopify(client, body, event_id=None)  # falls back to X-Shopify-Webhook-Id
    assert resp.status_code == 202
    resp = post_shopify(client, body, topic="products/update")
    assert resp.status_code == 200 and resp.json()["ignored"] == "topic products/update"
    bad = shopify_level()
    bad["inventory_item_id"] = "abc"
    resp = post_shopify(client, dumps(bad), event_id="e-bad")
    assert resp.status_code == 400 and "inventory_item_id" in resp.json()["detail"]
    bad = shopify_level()
    del bad["updated_at"]
    resp = post_shopify(client, dumps(bad), event_id="e-bad2")
    assert resp.status_code == 400 and resp.json()["fields"][0]["field"] == "updated_at"


# Standard Webhooks --------------------------------------------------------------------------------


def test_standard_canonical_body_and_duplicate(client: TestClient, ledger: Ledger) -> None:
    body = dumps(canonical_body())
    resp = post_standard(client, body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 2, "superseded": 0, "duplicate": 0}
    assert ledger.desired(target(101))[0] is False  # type: ignore[index]
    assert ledger.desired(target(102))[0] is False  # type: ignore[index]
    stats = ledger.stats(BUSINESS)
    resp = post_standard(client, body, secret=STANDARD_SECRETS[1])  # same webhook-id, rotated secret
    assert resp.status_code == 200 and resp.json()["duplicate"] is True
    assert ledger.stats(BUSINESS) == stats


def test_standard_rejections(client: TestClient) -> None:
    body = dumps(canonical_body())
    resp = post_standard(client, body, ts=int(time.time()) - 3600)
    assert resp.status_code == 401 and "too old" in resp.json()["detail"]
    resp = post_standard(client, body, secret="whsec_" + base64.b64encode(b"someone-else").decode())
    assert resp.status_code == 401
    invalid = canonical_body()
    invalid["changes"][0]["enabled"] = "maybe"
    resp = post_standard(client, dumps(invalid), msg_id="msg_bad")
    assert resp.status_code == 400 and "changes[0].enabled" in resp.json()["detail"]


# Canonical API ------------------------------------------------------------------------------------


def auth(token: str = API_TOKENS[0]) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_changes_answer_503_when_too_few_replicas_acknowledge(client: TestClient, ledger: Ledger) -> None:
    """MENUSYNC_REDIS_MIN_REPLICAS_ACK=1 against a Redis without replicas: recorded, but 503 (retry)."""
    from workers.runtime import reset_runtime

    body = canonical_body()
    reset_runtime(load_settings(redis_min_replicas_ack=1, redis_ack_timeout_ms=50))
    try:
        resp = client.post("/v1/changes", json=body, headers=auth(API_TOKENS[1]))
        assert resp.status_code == 503 and resp.json()["error"] == "unavailable", resp.text
    finally:
        reset_runtime()
    resp = client.post("/v1/changes", json=body, headers=auth(API_TOKENS[1]))  # the sender's retry
    assert resp.status_code == 200 and resp.json()["duplicate"] == 2, resp.text  # recorded the first time
    assert ledger.desired(target(101))[0] is False  # type: ignore[index]


def test_changes_happy_path_records_in_ledger(client: TestClient, ledger: Ledger) -> None:
    resp = client.post("/v1/changes", json=canonical_body(), headers=auth(API_TOKENS[1]))
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 2, "superseded": 0, "duplicate": 0}
    for entity in (101, 102):
        value, _ = ledger.desired(target(entity))  # type: ignore[misc]
        assert value is False
    # an older change for the same targets is superseded
    old = canonical_body(change_id="old", enabled=True, occurred_at="2020-01-01T00:00:00Z")
    resp = client.post("/v1/changes", json=old, headers=auth())
    assert resp.json() == {"accepted": 0, "superseded": 2, "duplicate": 0}
    assert ledger.desired(target(101))[0] is False  # type: ignore[index]


def test_changes_business_level_visibility_sets_each_named_channel(client: TestClient, ledger: Ledger) -> None:
    # Without a klikit credential here, klikit's own marketplace ("1") is the channel intake knows.
    body = canonical_body(kind="visibility", enabled=None, visibilities={"1": False}, stores=[])
    resp = client.post("/v1/changes", json=body, headers=auth())
    assert resp.status_code == 202, resp.text
    t = Target(business_id=BUSINESS, store=None, level="item", entity_id=101, field="visibilities", provider=1)
    assert ledger.desired(t)[0] is False  # type: ignore[index]
    assert set(ledger.all_desired(BUSINESS)) == {t.key(), t.model_copy(update={"entity_id": 102}).key()}


def test_changes_with_until_schedules_the_reenable(client: TestClient, r: redis.Redis, keys: Keys) -> None:
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = canonical_body(until=until)
    assert client.post("/v1/changes", json=body, headers=auth()).status_code == 202
    assert Timers(r, keys).counts() == {"due": 2, "processing": 0}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("wrong-token"),
        {"authorization": API_TOKENS[0]},
        {"authorization": "Bearer "},
        {"authorization": f"Basic {API_TOKENS[0]}"},
    ],
)
def test_changes_without_a_valid_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    resp = client.post("/v1/changes", json=canonical_body(), headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized", "detail": "missing or invalid bearer token"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(business_id=0), "business_id"),
        (lambda b: b["changes"][0].update(kind="price"), "changes[0].kind"),
        (lambda b: b["changes"][0].pop("enabled"), "changes[0]"),
        (lambda b: b["changes"][0].update(entity_ids=[]), "changes[0].entity_ids"),
        (lambda b: b["changes"][0].update(stores=[{"brand_id": 1}]), "changes[0].stores[0].branch_id"),
        (lambda b: b["changes"][0].update(occurred_at="yesterday"), "changes[0].occurred_at"),
        (lambda b: b["changes"][0].update(extra=1), "changes[0].extra"),
        (lambda b: b.update(changes=[]), "changes"),
        (lambda b: b["changes"][0].update(level="modifier_group"), "changes[0]"),
    ],
)
def test_changes_invalid_body_names_the_field(client: TestClient, mutate: Any, field: str) -> None:
    body = canonical_body()
    mutate(body)
    resp = client.post("/v1/changes", json=body, headers=auth())
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_body"
    assert resp.json()["detail"].startswith(f"invalid field {field}")


def test_changes_visibility_with_bad_provider_names_the_change(client: TestClient) -> None:
    body = canonical_body(kind="visibility", enabled=None, visibilities={"grab": True})
    resp = client.post("/v1/changes", json=body, headers=auth())
    assert resp.status_code == 400 and "changes[0]" in resp.json()["detail"]


# Operations ---------------------------------------------------------------------------------------


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    post_square(client, dumps(square_event(event_id="metric-evt")))
    text = client.get("/metrics").text
    assert 'menusync_webhook_events_total{outcome="accepted",source="square"}' in text


def test_ready_is_503_when_redis_is_down(settings: Settings) -> None:
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with TestClient(create_app(settings, client=down)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        resp = post_square(client, dumps(square_event()))
        assert resp.status_code == 503 and resp.json()["error"] == "unavailable"


def test_failure_while_recording_releases_the_claim(
    client: TestClient, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    import producers.app as app_module

    real = app_module.accept

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("lost the connection")

    monkeypatch.setattr(app_module, "accept", broken)
    body = dumps(square_event(event_id="evt-crash"))
    assert post_square(client, body).status_code == 503
    monkeypatch.setattr(app_module, "accept", real)
    resp = post_square(client, body)  # the sender's retry goes through
    assert resp.status_code == 202 and resp.json()["accepted"] == 1
    assert ledger.desired(target(101))[0] is False  # type: ignore[index]


def test_concurrent_delivery_in_progress_is_409(client: TestClient, r: redis.Redis, keys: Keys) -> None:
    r.set(keys("dedupe", "square", "evt-busy"), "pending", ex=30)
    resp = post_square(client, dumps(square_event(event_id="evt-busy")))
    assert resp.status_code == 409 and resp.json()["error"] == "in_progress"


def test_no_secret_in_responses_reprs_or_logs(
    settings: Settings, mappings: Any, json_logs: pytest.CaptureFixture
) -> None:
    with TestClient(create_app(settings)) as client:
        bodies = [
            post_square(client, dumps(square_event()), key="wrong").text,
            post_shopify(client, dumps(shopify_level()), secret="wrong").text,
            post_standard(client, dumps(canonical_body()), secret=STANDARD_SECRETS[0], ts=1).text,
            client.post("/v1/changes", json={}, headers=auth()).text,
            client.post("/v1/changes", json={}, headers=auth(API_TOKENS[1] + "x")).text,
            post_square(client, dumps(square_event(event_id="ok-1"))).text,
        ]
        structlog.get_logger("test").info("probe", authorization=f"Bearer {API_TOKENS[0]}", note=SQUARE_KEYS[1])
        reprs = [repr(client.app.state.receiver)]  # type: ignore[attr-defined]
    logs = json_logs.readouterr()
    for text in [*bodies, *reprs, logs.out, logs.err]:
        for secret in ALL_SECRETS:
            assert secret not in text
    assert "request rejected" in logs.err  # the lines were written, only without secrets


def test_settings_repr_hides_producer_secrets(settings: Settings) -> None:
    text = repr(settings)
    assert not any(secret in text for secret in ALL_SECRETS)
