"""enableSections / enableCategories / enableItems (``PATCH /menus/{level}/enable``).

Body ``{ids* (min 1), isEnabled (missing/null = false), zoneStores?, brandIDsToCascade?,
isCascadeToModifierGroups?}``. Without ``zoneStores`` (or with an empty list) the business rows are
flipped; with it, each named store gets an override row and the business row is untouched. The
cascade flips the modifier-group <-> modifier link rows under the targeted entities: at business
level the business link rows (or, when ``brandIDsToCascade`` is given, per-brand link rows), at store
level the store's link rows (only stores whose brand is in ``brandIDsToCascade`` when given).
``/items/enable`` also takes modifier ids (modifiers are items with ``onlyModifier``).
Everything is validated before anything is written.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox import validate as v
from devstack.sandbox.ops.context import OpContext, resolve_brands, resolve_entities, resolve_stores
from devstack.sandbox.world import Business, Entity, LinkKey

LEVELS_OF_PATH: dict[str, tuple[str, ...]] = {
    "sections": ("section",),
    "categories": ("category",),
    "items": ("item", "modifier"),
}


def cascade_links(business: Business, entities: list[Entity]) -> list[LinkKey]:
    """The link rows attached to (below) the given entities."""
    groups: set[int] = set()
    links: list[LinkKey] = []
    stack = list(entities)
    while stack:
        entity = stack.pop()
        if entity.level == "modifier":
            links.extend(k for k in business.links if k[1] == entity.id)
        elif entity.level == "item":
            groups.update(entity.children)
        else:
            stack.extend(business.entities[c] for c in entity.children if c in business.entities)
    for gid in sorted(groups):
        group = business.entities.get(gid)
        if group is not None:
            links.extend((gid, mid) for mid in group.children)
    return list(dict.fromkeys(links))


def enable(ctx: OpContext, path_level: str) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    ids = v.int_list(v.required(body, "ids"), "ids", min_items=1)
    flag = v.opt_bool(body, "isEnabled", False)
    pairs = v.zone_stores(body["zoneStores"]) if body.get("zoneStores") is not None else []
    brand_ids = v.int_list(body["brandIDsToCascade"], "brandIDsToCascade") if body.get("brandIDsToCascade") else []
    cascade = v.opt_bool(body, "isCascadeToModifierGroups", False)
    levels = LEVELS_OF_PATH[path_level]
    entities = resolve_entities(biz, ids, levels, levels[0])
    stores = resolve_stores(biz, pairs)
    resolve_brands(biz, brand_ids)
    links = cascade_links(biz, entities) if cascade else []

    if not stores:
        for entity in entities:
            entity.enabled = flag
        for link in links:
            if brand_ids:
                for brand_id in brand_ids:
                    biz.brand_link_overrides.setdefault(brand_id, {})[link] = flag
            else:
                biz.links[link]["enabled"] = flag
    for store in stores:
        for entity in entities:
            store.overrides.setdefault(entity.id, {})["enabled"] = flag
        if not brand_ids or store.brand_id in brand_ids:
            for link in links:
                store.link_overrides[link] = flag
    return {"updated": len(entities), "stores": len(stores)}
