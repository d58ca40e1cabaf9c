"""Effective values at a store: the store's override field if present, else the business value.

Values are replaced wholesale on every write (never mutated in place), so the maps returned here may
be shared with the model and with snapshots.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox.world import LEVELS, Business, Entity, LinkKey, Store


def business_values(entity: Entity) -> dict[str, Any]:
    values: dict[str, Any] = {"enabled": entity.enabled, "visibilities": entity.visibilities}
    if entity.level == "section":
        values["availableTimes"] = entity.available_times
    return values


def store_values(entity: Entity, store: Store) -> dict[str, Any]:
    override = store.overrides.get(entity.id)
    if not override:
        return business_values(entity)
    values: dict[str, Any] = {
        "enabled": override.get("enabled", entity.enabled),
        "visibilities": override.get("visibilities", entity.visibilities),
    }
    if entity.level == "section":
        values["availableTimes"] = override.get("availableTimes", entity.available_times)
    return values


def store_sequence(entity: Entity, store: Store | None) -> int:
    if store is None:
        return entity.sequence
    return int(store.overrides.get(entity.id, {}).get("sequence", entity.sequence))


def link_enabled(business: Business, link: LinkKey, store: Store | None) -> bool:
    if store is not None:
        if link in store.link_overrides:
            return store.link_overrides[link]
        brand_rows = business.brand_link_overrides.get(store.brand_id)
        if brand_rows and link in brand_rows:
            return brand_rows[link]
    return bool(business.links.get(link, {}).get("enabled", True))


def effective_map(business: Business, store: Store) -> dict[str, dict[int, dict[str, Any]]]:
    """level -> id -> {enabled, visibilities[, availableTimes]} for every entity of the business."""
    out: dict[str, dict[int, dict[str, Any]]] = {level: {} for level in LEVELS}
    for entity in business.entities.values():
        out[entity.level][entity.id] = store_values(entity, store)
    return out


def business_map(business: Business) -> dict[str, dict[int, dict[str, Any]]]:
    out: dict[str, dict[int, dict[str, Any]]] = {level: {} for level in LEVELS}
    for entity in business.entities.values():
        out[entity.level][entity.id] = business_values(entity)
    return out
