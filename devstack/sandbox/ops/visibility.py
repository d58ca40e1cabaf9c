"""setXxxVisibilities (``PATCH /menus/{level}/{id}/visibilities``): wholesale replacement of the map.

Body ``{visibilities*, zoneStores?}``. Without ``zoneStores`` (or with an empty list) the business
row's map is replaced; with it, each named store's override row gets the map and the business row is
untouched. ``/items/{id}`` also takes modifier ids (modifiers are items).
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox import validate as v
from devstack.sandbox.ops.context import OpContext, resolve_entities, resolve_stores

LEVELS_OF_PATH: dict[str, tuple[str, ...]] = {
    "sections": ("section",),
    "categories": ("category",),
    "items": ("item", "modifier"),
    "modifier-groups": ("modifier_group",),
    "modifiers": ("modifier",),
}


def set_visibilities(ctx: OpContext, path_level: str) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    levels = LEVELS_OF_PATH[path_level]
    (entity,) = resolve_entities(biz, [ctx.params["id"]], levels, levels[0].replace("_", " "))
    visibilities = v.visibilities(v.required(body, "visibilities"))
    pairs = v.zone_stores(body["zoneStores"]) if body.get("zoneStores") is not None else []
    stores = resolve_stores(biz, pairs)
    if not stores:
        entity.visibilities = visibilities
    for store in stores:
        store.overrides.setdefault(entity.id, {})["visibilities"] = dict(visibilities)
    return {"id": entity.id, "stores": len(stores)}
