"""``GET /_sandbox/state/{business_id}``: the raw model of one business as JSON.

Shape::

    {"business_id": 398,
     "business": {level: {"<id>": {"enabled", "visibilities"[, "availableTimes"]}}},
     "links": {"<group id>": {"<modifier id>": {"enabled", "sequence"}}},
     "stores": {"brand:branch": {"brand_id", "branch_id", "has_menu_rows",
                                 "overrides": {level: {"<id>": {field: value}}},
                                 "link_overrides": {"<group>:<modifier>": bool}}},
     "published": {"brand:branch": {"published_at", "provider_ids", "publish_count", "scheduled_at"}},
     "effective_published": {"brand:branch": {level: {"<id>": {"enabled", "visibilities"[, "availableTimes"]}}}}}

Levels are ``section``, ``category``, ``item``, ``modifier_group``, ``modifier``. A store that was
never published is absent from ``published`` and ``effective_published``.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox.effective import business_map
from devstack.sandbox.world import LEVELS, Business, store_key_str


def _by_level(values: dict[str, dict[int, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    return {level: {str(i): dict(v) for i, v in values.get(level, {}).items()} for level in LEVELS}


def render_state(business: Business) -> dict[str, Any]:
    stores: dict[str, Any] = {}
    published: dict[str, Any] = {}
    effective: dict[str, Any] = {}
    for key, store in business.stores.items():
        name = store_key_str(key)
        overrides: dict[str, dict[str, Any]] = {level: {} for level in LEVELS}
        for entity_id, row in store.overrides.items():
            entity = business.entities.get(entity_id)
            if entity is not None and row:
                overrides[entity.level][str(entity_id)] = dict(row)
        stores[name] = {
            "brand_id": store.brand_id,
            "branch_id": store.branch_id,
            "has_menu_rows": store.has_menu_rows(),
            "overrides": overrides,
            "link_overrides": {f"{g}:{m}": flag for (g, m), flag in store.link_overrides.items()},
        }
        snap = store.snapshot
        if snap is not None:
            published[name] = {
                "published_at": snap.published_at,
                "provider_ids": list(snap.provider_ids),
                "publish_count": snap.publish_count,
                "scheduled_at": snap.scheduled_at,
            }
            effective[name] = _by_level(snap.effective)
    links: dict[str, dict[str, Any]] = {}
    for (g, m), row in business.links.items():
        links.setdefault(str(g), {})[str(m)] = dict(row)
    return {
        "business_id": business.id,
        "business": _by_level(business_map(business)),
        "links": links,
        "brand_link_overrides": {
            str(b): {f"{g}:{m}": flag for (g, m), flag in rows.items()}
            for b, rows in business.brand_link_overrides.items()
        },
        "stores": stores,
        "published": published,
        "effective_published": effective,
    }
