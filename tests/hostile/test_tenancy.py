"""Per-business authorization and bounded requests at intake.

Tokens and Standard Webhooks secrets are scoped to businesses; a change for a business menusync has
no credentials for is refused; Square webhooks only reach the businesses their mappings name; one
request cannot expand into more than MENUSYNC_MAX_TARGETS_PER_REQUEST targets, and a large one is
recorded in chunks of at most RECORD_CHUNK targets per script call with one nudge.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from fastapi.testclient import TestClient
from hostile_support import (
    NOTIFICATION_URL,
    STANDARD_SECRET,
    canonical,
    dumps,
    hostile_settings,
    ledger_keys,
    square_headers,
    standard_headers,
)

from config.redis import Keys
from producers.app import create_app
from workers.changes import Change, Store, Target
from workers.ledger import RECORD_CHUNK, Ledger
from workers.runtime import reset_runtime

SCOPED = "pos-bridge=398:tok-scoped-398-aa17"
OTHER = "other=399:tok-scoped-399-bb28"
WILDCARD = "ops=*:tok-wildcard-cc39"
ROTATED = "pos-bridge=398:tok-scoped-398-new-dd40"


def _client(r: redis.Redis, **overrides: Any) -> TestClient:
    reset_runtime()
    settings = hostile_settings(api_tokens=f"{SCOPED},{OTHER},{WILDCARD},{ROTATED}", **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _post(client: TestClient, entry: str, body: dict[str, Any]) -> Any:
    token = entry.rsplit(":", 1)[1]
    return client.post("/v1/changes", json=body, headers={"Authorization": f"Bearer {token}"})


def test_a_token_writes_only_the_businesses_it_names(r: redis.Redis, run_prefix: str) -> None:
    with _client(r) as client:
        refused = _post(client, OTHER, canonical())
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "business_id" and "398" in refused.json()["detail"]
        assert "other" in refused.json()["detail"]
        assert ledger_keys(r, run_prefix) == []
        for entry in (SCOPED, ROTATED, WILDCARD):  # the scoped token, its rotation twin, and a * token
            assert _post(client, entry, canonical(change_id=f"ok-{entry[:4]}")).status_code == 202


def test_a_business_without_credentials_is_refused_and_never_recorded(r: redis.Redis, run_prefix: str) -> None:
    with _client(r) as client:
        for business in (777, 2**53 - 1):
            resp = _post(client, WILDCARD, {**canonical(), "business_id": business})
            assert resp.status_code == 422, resp.text
            assert str(business) in resp.json()["detail"] and resp.json()["field"] == "business_id"
        assert ledger_keys(r, run_prefix) == []


def test_a_standard_webhooks_secret_writes_only_its_businesses(r: redis.Redis, run_prefix: str) -> None:
    with _client(r, standard_webhook_secrets=f"399:{STANDARD_SECRET}") as client:
        body = dumps(canonical())
        resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body, msg_id="m-scope-1"))
        assert resp.status_code == 403, resp.text
        assert ledger_keys(r, run_prefix) == []
        # Refused before the dedupe claim: the same id, once the secret may write 398, goes through.
    with _client(r, standard_webhook_secrets=f"398|399:{STANDARD_SECRET}") as client:
        resp = client.post("/webhooks/standard", content=body, headers=standard_headers(body, msg_id="m-scope-1"))
        assert resp.status_code == 202, resp.text


def test_a_square_webhook_reaches_only_the_businesses_its_mappings_name(r: redis.Redis, keys: Keys) -> None:
    from producers.mapping import Mappings, parse_csv

    Mappings(r, keys).import_rows(
        parse_csv(
            "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
            "entity,square,ITEM-398,398,item,101,,\n"
            "location,square,LOC-398,398,,,5297,1293\n"
        )
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def event(event_id: str, item: str) -> bytes:
        count = {
            "calculated_at": now,
            "catalog_object_id": item,
            "catalog_object_type": "ITEM_VARIATION",
            "location_id": "LOC-398",
            "quantity": "0",
            "state": "IN_STOCK",
        }
        return json.dumps(
            {
                "merchant_id": "M",
                "type": "inventory.count.updated",
                "event_id": event_id,
                "created_at": now,
                "data": {"type": "inventory_counts", "id": "x", "object": {"inventory_counts": [count]}},
            }
        ).encode()

    with _client(r) as client:
        for event_id, item in (("e-mapped", "ITEM-398"), ("e-other", "ITEM-OF-ANOTHER-BUSINESS")):
            body = event(event_id, item)
            assert client.post("/webhooks/square", content=body, headers=square_headers(body)).status_code == 202
    assert NOTIFICATION_URL
    businesses = Ledger(r, keys).businesses()
    assert businesses == [398]
    desired = Ledger(r, keys).all_desired(398)
    assert list(desired) == ["398|5297:1293|item|101|enabled"]


def test_a_request_expanding_past_the_cap_is_413_naming_cap_and_count(r: redis.Redis, run_prefix: str) -> None:
    stores = [{"brand_id": 5297, "branch_id": b} for b in range(1, 12)]
    too_many = canonical(entity_ids=list(range(1, 1001)), stores=stores)  # 1,000 x 11 = 11,000
    with _client(r) as client:
        resp = _post(client, WILDCARD, too_many)
        assert resp.status_code == 413, resp.text
        assert resp.json()["count"] == 11_000 and resp.json()["cap"] == 10_000
        assert "11000" in resp.json()["detail"] and "10000" in resp.json()["detail"]
        assert ledger_keys(r, run_prefix) == []


class _CountingRedis(redis.Redis):
    """A real client that remembers how many targets each record-script call carried."""

    record_sizes: list[int]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        # EVALSHA sha numkeys KEYS... ARGV...: the record script's 9th key is the businesses set; its
        # 13 keys are followed by 8 header arguments (now, business, flag ttl, history cap, source, actor,
        # receive time, delivery mark ttl), then 5 per change. Keys and arguments come as bytes.
        if args[0] in ("EVALSHA", "EVAL") and args[2] == 13 and bytes(args[11]).endswith(b":businesses"):
            self.record_sizes.append((len(args) - 3 - 13 - 8) // 5)
        return super().execute_command(*args, **options)


def test_a_large_request_is_recorded_in_chunks_with_one_nudge(r: redis.Redis, keys: Keys, redis_url: str) -> None:
    client = _CountingRedis.from_url(redis_url, decode_responses=True)
    client.record_sizes = []
    ledger = Ledger(client, keys)
    store = Store(brand_id=5297, branch_id=1293)
    changes = [
        Change(
            id=f"c{i}",
            target=Target(business_id=398, store=store, level="item", entity_id=i, field="enabled"),
            value=False,
            occurred_at_ms=1_790_000_000_000,
        )
        for i in range(1, 2 * RECORD_CHUNK + RECORD_CHUNK // 2 + 1)
    ]
    # The same target twice, newest first, in different chunks: the newest still wins.
    newest = Change(id="newest", target=changes[0].target, value=True, occurred_at_ms=1_790_000_000_001)
    to_send: set[int] = set()
    versions = ledger.record([newest, *changes], flush_to_send=to_send)
    assert client.record_sizes == [RECORD_CHUNK, RECORD_CHUNK, RECORD_CHUNK // 2 + 1]
    assert to_send == {398}
    assert versions.count(None) == 1  # only the older duplicate lost
    assert ledger.desired(changes[0].target)[0] is True  # type: ignore[index]
    assert ledger.pending_count(398) == 2 * RECORD_CHUNK + RECORD_CHUNK // 2


def test_the_same_target_time_and_value_again_is_a_duplicate_with_no_new_version(r: redis.Redis, keys: Keys) -> None:
    body = canonical(change_id="same-1")
    with _client(r) as client:
        first = _post(client, WILDCARD, body)
        assert first.status_code == 202 and first.json()["accepted"] == 1
        target = Target(
            business_id=398, store=Store(brand_id=5297, branch_id=1293), level="item", entity_id=101, field="enabled"
        )
        version = Ledger(r, keys).desired(target)[1]  # type: ignore[index]
        again = _post(client, WILDCARD, {**body, "changes": [{**body["changes"][0], "id": "same-2"}]})
        assert again.status_code == 200, again.text
        assert again.json() == {"accepted": 0, "superseded": 0, "duplicate": 1}
        assert Ledger(r, keys).desired(target)[1] == version, "no new version: nothing to write"
        flipped = _post(client, WILDCARD, {**body, "changes": [{**body["changes"][0], "enabled": True}]})
        assert flipped.json()["accepted"] == 1, "the same time with another value is a new change"


def test_a_signed_shopify_body_replayed_under_a_new_event_id_is_a_duplicate(r: redis.Redis, keys: Keys) -> None:
    from hostile_support import shopify_headers

    from producers.mapping import Mappings, parse_csv

    Mappings(r, keys).import_rows(
        parse_csv(
            "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
            "entity,shopify,808950810,398,item,102,,\n"
            "location,shopify,655441491,398,,,5297,1293\n"
        )
    )
    body = json.dumps(
        {
            "inventory_item_id": 808950810,
            "location_id": 655441491,
            "available": 0,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
    ).encode()
    with _client(r) as client:
        first = client.post("/webhooks/shopify", content=body, headers=shopify_headers(body, event_id="evt-1"))
        assert first.status_code == 202 and first.json()["accepted"] == 1, first.text
        replay = client.post("/webhooks/shopify", content=body, headers=shopify_headers(body, event_id="evt-forged"))
        assert replay.status_code == 200 and replay.json()["duplicate"] is True, replay.text
    assert Ledger(r, keys).stats(398)["recorded"] == 1


def test_pos_event_times_before_1970_are_400_naming_the_field_and_the_id_stays_free(
    r: redis.Redis, run_prefix: str
) -> None:
    def square(calculated_at: str) -> bytes:
        count = {
            "calculated_at": calculated_at,
            "catalog_object_id": "ITEM",
            "catalog_object_type": "ITEM_VARIATION",
            "location_id": "LOC",
            "quantity": "0",
            "state": "IN_STOCK",
        }
        return json.dumps(
            {
                "merchant_id": "M",
                "type": "inventory.count.updated",
                "event_id": "e-1969",
                "created_at": calculated_at,
                "data": {"type": "inventory_counts", "id": "x", "object": {"inventory_counts": [count]}},
            }
        ).encode()

    with _client(r) as client:
        old = square("1969-12-31T23:59:59Z")
        resp = client.post("/webhooks/square", content=old, headers=square_headers(old))
        assert resp.status_code == 400, resp.text
        assert "calculated_at" in resp.text and "1970" in resp.text
        fixed = square(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        again = client.post("/webhooks/square", content=fixed, headers=square_headers(fixed))
        assert again.status_code == 202, "the same event id is not held by the refused delivery"


def test_unicode_digits_in_paths_and_queries_are_400_not_500(r: redis.Redis) -> None:
    # str.isdigit() accepts "¹" and "٣", which int() refuses or reads as another number.
    with _client(r, operator_tokens="ops=*:tok-operator-ee51") as client:
        auth = {"Authorization": "Bearer tok-operator-ee51"}
        for path in ("/v1/businesses/¹/history", "/v1/businesses/398/history?limit=¹"):
            resp = client.get(path, headers=auth)
            assert resp.status_code == 400, (path, resp.status_code, resp.text)
