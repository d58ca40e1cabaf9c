"""publishMenu (``POST /menus/publish``) and resetStoreOverrides (``POST /menus/reset``).

Publish body ``{stores*: [{brandID, branchID}] (min 1), providerIDs*: [int] (min 1), scheduledAt?:
date-time}``. For each store it freezes the effective menu (override if present, else business row)
into the store's snapshot, which store-mode ``getMenu`` and the admin state read; nothing else
changes a snapshot. ``scheduledAt`` is validated and recorded; the snapshot is built at once.

Reset body: a passthrough object; ``business_id`` is overwritten by the credential's business. It
drops every store override (enable, visibility, schedule, sequence, modifier links) of all stores of
the business, or of the stores listed in ``stores`` when given. Snapshots stay until the next publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devstack.sandbox import validate as v
from devstack.sandbox.effective import effective_map
from devstack.sandbox.envelope import invalid
from devstack.sandbox.menu_view import render_sections
from devstack.sandbox.ops.context import OpContext, resolve_stores
from devstack.sandbox.world import Snapshot


def _scheduled_at(value: Any) -> str | None:
    if value is None or value == 0 or value == "":
        return None
    if not isinstance(value, str):
        raise invalid("scheduledAt", "must be a date-time string")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("scheduledAt", "must be an ISO 8601 date-time") from None
    return value


def publish(ctx: OpContext) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    pairs = v.zone_stores(v.required(body, "stores"), "stores", min_items=1)
    provider_ids = v.int_list(v.required(body, "providerIDs"), "providerIDs", min_items=1)
    scheduled_at = _scheduled_at(body.get("scheduledAt"))
    stores = resolve_stores(biz, pairs)
    for store in stores:
        count = store.snapshot.publish_count + 1 if store.snapshot else 1
        store.snapshot = Snapshot(
            published_at=ctx.now,
            provider_ids=provider_ids,
            publish_count=count,
            scheduled_at=scheduled_at,
            effective=effective_map(biz, store),
            sections=render_sections(biz, store),
        )
    return {"success": len(stores), "failed": 0}


def reset_overrides(ctx: OpContext) -> dict[str, Any]:
    body = {**ctx.body, "business_id": ctx.business.id}
    if body.get("stores") is not None:
        stores = resolve_stores(ctx.business, v.zone_stores(body["stores"], "stores"))
    else:
        stores = list(ctx.business.stores.values())
    for store in stores:
        store.overrides.clear()
        store.link_overrides.clear()
    return {"success": len(stores), "failed": 0, "business_id": ctx.business.id}
