"""Shared constants and payload builders of the producer tests (payload shapes as the vendors document them)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from config.settings import Settings

SQUARE_KEYS = ("sq-sigkey-old-4f9a", "sq-sigkey-new-77b1")
SHOPIFY_SECRETS = ("shpss-old-secret-0a1b", "shpss-new-secret-9c8d")
STANDARD_SECRETS = (
    "whsec_" + base64.b64encode(b"standard-old-secret-bytes-0001").decode(),
    "whsec_" + base64.b64encode(b"standard-new-secret-bytes-0002").decode(),
)
API_TOKENS = ("tok-alpha-5d2e8f", "tok-beta-a91c3b")
ALL_SECRETS = (*SQUARE_KEYS, *SHOPIFY_SECRETS, *STANDARD_SECRETS, *API_TOKENS)
NOTIFICATION_URL = "https://menusync.example.com/webhooks/square"

BUSINESS = 398
STORE = (5297, 1293)

MAPPING_CSV = f"""kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id
entity,square,FGQ5JJWT2PYTHF35CKZ4DFUR,{BUSINESS},item,101,,
location,square,YYQR0AH9WKHE8,{BUSINESS},,,{STORE[0]},{STORE[1]}
entity,shopify,808950810,{BUSINESS},item,102,,
location,shopify,655441491,{BUSINESS},,,{STORE[0]},{STORE[1]}
entity,sku,BURGER-CLASSIC,{BUSINESS},item,103,,
location,inventory,KITCHEN-1,{BUSINESS},,,{STORE[0]},{STORE[1]}
"""


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_tokens": ",".join(API_TOKENS),
        "square_signature_keys": ",".join(SQUARE_KEYS),
        "square_notification_url": NOTIFICATION_URL,
        "shopify_webhook_secrets": ",".join(SHOPIFY_SECRETS),
        "standard_webhook_secrets": ",".join(STANDARD_SECRETS),
        "webhook_max_body_bytes": 64 * 1024,
        "stock_threshold": 0,
    }
    values.update(overrides)
    return Settings(**values)


def now_iso(offset_s: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + offset_s)) + ".123456789Z"


def square_event(
    *,
    event_id: str = "df5f3813-a913-45a1-94e9-fdc3f7d5e3b6",
    catalog_object_id: str = "FGQ5JJWT2PYTHF35CKZ4DFUR",
    location_id: str = "YYQR0AH9WKHE8",
    quantity: str = "0",
    state: str = "IN_STOCK",
    calculated_at: str | None = None,
) -> dict[str, Any]:
    """An ``inventory.count.updated`` notification shaped as Square documents it."""
    return {
        "merchant_id": "5S9MXCS9Y99KK",
        "type": "inventory.count.updated",
        "event_id": event_id,
        "created_at": now_iso(),
        "data": {
            "type": "inventory_counts",
            "id": "84e4ac73-d605-4dbd-a9e5-ffb141c5b0e6",
            "object": {
                "inventory_counts": [
                    {
                        "calculated_at": calculated_at or now_iso(),
                        "catalog_object_id": catalog_object_id,
                        "catalog_object_type": "ITEM_VARIATION",
                        "location_id": location_id,
                        "quantity": quantity,
                        "state": state,
                    }
                ]
            },
        },
    }


def shopify_level(
    *, inventory_item_id: int = 808950810, location_id: int = 655441491, available: int | None = 0
) -> dict[str, Any]:
    """An ``inventory_levels/update`` payload shaped as Shopify documents it."""
    return {
        "inventory_item_id": inventory_item_id,
        "location_id": location_id,
        "available": available,
        "updated_at": datetime.now(UTC).astimezone(timezone(timedelta(hours=-5))).isoformat(timespec="seconds"),
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={inventory_item_id}",
    }


def canonical_body(*, change_id: str = "pos-1:0", enabled: bool = False, **extra: Any) -> dict[str, Any]:
    change: dict[str, Any] = {
        "id": change_id,
        "kind": "availability",
        "level": "item",
        "entity_ids": [101, 102],
        "enabled": enabled,
        "stores": [{"brand_id": STORE[0], "branch_id": STORE[1]}],
        "occurred_at": now_iso(),
        "until": None,
    }
    change.update(extra)
    return {"business_id": BUSINESS, "changes": [change]}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()
