"""Rendering the menu tree for ``GET /v1/partner/menus``.

Store mode renders the effective values at a store (done once, at publish time, and kept in the
snapshot); business mode renders the live business rows, with sections carrying ``linkedCategories``
and no store-derived fields. Reads say ``enabled`` where writes say ``isEnabled``; items carry ``sku``.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox.effective import business_values, link_enabled, store_sequence, store_values
from devstack.sandbox.world import Business, Entity, Store

PROVIDER_IDS = "1,6,9,11,16,17"


def _values(entity: Entity, store: Store | None) -> dict[str, Any]:
    return store_values(entity, store) if store is not None else business_values(entity)


def _children(business: Business, entity: Entity) -> list[Entity]:
    return [business.entities[c] for c in entity.children if c in business.entities]


def _modifier(business: Business, group: Entity, modifier: Entity, store: Store | None) -> dict[str, Any]:
    values = _values(modifier, store)
    link = business.links.get((group.id, modifier.id), {})
    return {
        "id": modifier.id,
        "sku": modifier.sku,
        "title": modifier.title,
        "enabled": values["enabled"],
        "linkEnabled": link_enabled(business, (group.id, modifier.id), store),
        "visibilities": values["visibilities"],
        "prices": modifier.prices,
        "sequence": link.get("sequence", modifier.sequence),
    }


def _group(business: Business, group: Entity, store: Store | None) -> dict[str, Any]:
    values = _values(group, store)
    return {
        "id": group.id,
        "title": group.title,
        "enabled": values["enabled"],
        "visibilities": values["visibilities"],
        "sequence": group.sequence,
        "modifiers": [_modifier(business, group, m, store) for m in _children(business, group)],
    }


def _item(business: Business, item: Entity, store: Store | None) -> dict[str, Any]:
    values = _values(item, store)
    out: dict[str, Any] = {
        "id": item.id,
        "sku": item.sku,
        "title": item.title,
        "description": item.description,
        "enabled": values["enabled"],
        "visibilities": values["visibilities"],
        "prices": item.prices,
        "vat": item.vat,
        "prepTime": item.extra.get("prepTime"),
        "sequence": item.sequence,
        "modifierGroups": [_group(business, g, store) for g in _children(business, item)],
    }
    if store is not None:
        out.update({"isAvailable": values["enabled"], "stockEnabled": False, "attachedWithStore": True})
    return out


def _category(business: Business, category: Entity, store: Store | None) -> dict[str, Any]:
    values = _values(category, store)
    return {
        "id": category.id,
        "title": category.title,
        "description": category.description,
        "enabled": values["enabled"],
        "visibilities": values["visibilities"],
        "sequence": category.sequence,
        "items": [_item(business, i, store) for i in _children(business, category)],
    }


def _section(business: Business, section: Entity, store: Store | None) -> dict[str, Any]:
    values = _values(section, store)
    out: dict[str, Any] = {
        "id": section.id,
        "sequence": store_sequence(section, store),
        "title": section.title,
        "description": section.description,
        "enabled": values["enabled"],
        "image": None,
        "isMealForOne": bool(section.extra.get("isMealForOne", False)),
        "visibilities": values["visibilities"],
        "availableTimes": values["availableTimes"],
    }
    categories = [_category(business, c, store) for c in _children(business, section)]
    if store is not None:
        out.update({"isAvailable": values["enabled"], "attachedWithStore": True, "categories": categories})
    else:
        out["linkedCategories"] = categories
    return out


def render_sections(business: Business, store: Store | None) -> list[dict[str, Any]]:
    """Sections (ordered by sequence) at a store, or at business level when ``store`` is None."""
    sections = [_section(business, business.entities[s], store) for s in business.section_ids]
    sections.sort(key=lambda s: (s["sequence"], s["id"]))
    return sections


def branch_info(business: Business, store: Store) -> dict[str, Any]:
    return {
        "branchID": store.branch_id,
        "brandID": store.brand_id,
        "businessID": business.id,
        "countryID": business.country_id,
        "currencyCode": business.currency_code,
        "currencyID": business.currency_id,
        "currencySymbol": business.currency_symbol,
        "languageCode": business.language_code,
        "providerIDs": PROVIDER_IDS,
    }


def business_info(business: Business) -> dict[str, Any]:
    return {
        "businessID": business.id,
        "title": business.title,
        "countryID": business.country_id,
        "currencyCode": business.currency_code,
        "currencyID": business.currency_id,
        "currencySymbol": business.currency_symbol,
        "languageCode": business.language_code,
    }
