"""What an operation handler gets, and lookups that 404 on anything outside the caller's business."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.sandbox.envelope import not_found
from devstack.sandbox.world import Business, Entity, Store, World


@dataclass
class OpContext:
    world: World
    business: Business
    body: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    now: float = 0.0


def resolve_stores(business: Business, pairs: list[tuple[int, int]]) -> list[Store]:
    """The stores named, or 404 if any is not a store of this business."""
    stores: list[Store] = []
    for brand_id, branch_id in pairs:
        store = business.stores.get((brand_id, branch_id))
        if store is None:
            raise not_found(f"store (brandID {brand_id}, branchID {branch_id})")
        stores.append(store)
    return stores


def resolve_entities(business: Business, ids: list[int], levels: tuple[str, ...], what: str) -> list[Entity]:
    """The entities named at ``levels``, or 404 if any is not one of this business."""
    out: list[Entity] = []
    for entity_id in ids:
        entity = business.entity(entity_id, *levels)
        if entity is None:
            raise not_found(f"{what} {entity_id}")
        out.append(entity)
    return out


def resolve_brands(business: Business, brand_ids: list[int]) -> list[int]:
    for brand_id in brand_ids:
        if brand_id not in business.brands:
            raise not_found(f"brand {brand_id}")
    return brand_ids
