"""Deterministic seed data.

Demo business 398 "(DEMO) klikit Indonesia": brands 5297 and 1615, stores (5297, 1293),
(5297, 5913) and (1615, 1294); sections 6825-6828 (6825 "Breakfast" runs 07:00-11:00 daily),
categories 7001-7012, items 101-400 with SKUs "SKU-00001".."SKU-00300", modifier groups 8001-8004
and modifiers 9001-9012 (SKUs "MOD-00001".."MOD-00012"). Every item links one modifier group.

Benchmark business k (1-based) has id ``1000 + k`` and lives in the id block ``k * 1_000_000``:
sections +1001.., categories +2001.., modifier groups +3001.., modifiers +4001.., items +100001..,
brands +900001.., branches +950001.., ids created at run time +500001.. (demo: 500001..). So no two
businesses share any id. Every business B gets the credential ``pk_B`` / ``sk_B_sandbox`` with all
scopes; 398 also gets ``pk_398_revoked`` / ``sk_revoked`` (revoked) and ``pk_398_readonly`` /
``sk_readonly`` (``menus:read`` only). Every seeded store already has menu rows and has never been
published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.sandbox.config import SeedConfig
from devstack.sandbox.world import Brand, Business, Credential, Entity, Store, World

ALL_SCOPES = frozenset({"menus:read", "menus:write", "brands:read", "visibility:write"})
DEMO_BUSINESS_ID = 398
DEFAULT_VISIBILITIES = {"1": True, "6": True}
SECTION_NAMES = ("Breakfast", "Mains", "Drinks", "Desserts")
GROUP_NAMES = ("Size", "Spice level", "Extras", "Sugar level")


def breakfast_times() -> dict[str, Any]:
    """07:00-11:00 every day."""
    return {str(d): {"disabled": False, "slots": [{"startTime": 700, "endTime": 1100}]} for d in range(7)}


@dataclass(frozen=True)
class Layout:
    """The ids one business is seeded with."""

    business_id: int
    title: str
    brands: list[int]
    stores: list[tuple[int, int]]
    sections: list[int]
    categories: list[int]
    items: list[int]
    groups: list[int]
    modifiers: list[int]
    next_id: int


def demo_layout() -> Layout:
    return Layout(
        business_id=DEMO_BUSINESS_ID,
        title="(DEMO) klikit Indonesia",
        brands=[5297, 1615],
        stores=[(5297, 1293), (5297, 5913), (1615, 1294)],
        sections=list(range(6825, 6829)),
        categories=list(range(7001, 7013)),
        items=list(range(101, 401)),
        groups=list(range(8001, 8005)),
        modifiers=list(range(9001, 9013)),
        next_id=500_000,
    )


def bench_layout(k: int, stores: int, items: int) -> Layout:
    base = k * 1_000_000
    brand_count = min(2, stores)
    brands = [base + 900_001 + j for j in range(brand_count)]
    return Layout(
        business_id=1000 + k,
        title=f"Bench business {k}",
        brands=brands,
        stores=[(brands[j % brand_count], base + 950_001 + j) for j in range(stores)],
        sections=[base + 1001 + j for j in range(4)],
        categories=[base + 2001 + j for j in range(12)],
        items=[base + 100_001 + j for j in range(items)],
        groups=[base + 3001 + j for j in range(4)],
        modifiers=[base + 4001 + j for j in range(12)],
        next_id=base + 500_000,
    )


def build_business(layout: Layout) -> Business:
    biz = Business(id=layout.business_id, title=layout.title, next_id=layout.next_id)
    for n, brand_id in enumerate(layout.brands, 1):
        biz.brands[brand_id] = Brand(id=brand_id, title=f"Brand {n} of {layout.title}")
    for n, (brand_id, branch_id) in enumerate(layout.stores, 1):
        biz.stores[(brand_id, branch_id)] = Store(brand_id, branch_id, title=f"Branch {n} of {layout.title}")
    for n, gid in enumerate(layout.groups):
        group = Entity(gid, "modifier_group", {"en": GROUP_NAMES[n % 4]}, visibilities=dict(DEFAULT_VISIBILITIES))
        group.sequence = n + 1
        biz.entities[gid] = group
    per_group = max(1, len(layout.modifiers) // max(1, len(layout.groups)))
    for n, mid in enumerate(layout.modifiers):
        biz.entities[mid] = Entity(
            mid,
            "modifier",
            {"en": f"Option {n + 1}"},
            visibilities=dict(DEFAULT_VISIBILITIES),
            sequence=n % per_group + 1,
            sku=f"MOD-{n + 1:05d}",
            prices=_price(1000 * (n % 3)),
            extra={"onlyModifier": True},
        )
        gid = layout.groups[min(n // per_group, len(layout.groups) - 1)]
        biz.entities[gid].children.append(mid)
        biz.links[(gid, mid)] = {"enabled": True, "sequence": n % per_group + 1}
    for n, sid in enumerate(layout.sections):
        section = Entity(sid, "section", {"en": SECTION_NAMES[n % 4]}, visibilities=dict(DEFAULT_VISIBILITIES))
        section.sequence = n + 1
        if n == 0:
            section.available_times = breakfast_times()
        biz.entities[sid] = section
        biz.section_ids.append(sid)
    per_section = max(1, len(layout.categories) // len(layout.sections))
    for n, cid in enumerate(layout.categories):
        biz.entities[cid] = Entity(
            cid,
            "category",
            {"en": f"Category {n + 1}"},
            visibilities=dict(DEFAULT_VISIBILITIES),
            sequence=n % per_section + 1,
        )
        sid = layout.sections[min(n // per_section, len(layout.sections) - 1)]
        biz.entities[sid].children.append(cid)
    per_category = max(1, -(-len(layout.items) // len(layout.categories)))
    for n, iid in enumerate(layout.items):
        item = Entity(
            iid,
            "item",
            {"en": f"Menu item {n + 1}", "id": f"Menu item {n + 1}"},
            visibilities=dict(DEFAULT_VISIBILITIES),
            sequence=n % per_category + 1,
            sku=f"SKU-{n + 1:05d}",
            prices=_price(20_000 + 500 * (n % 40)),
            vat=11.0,
            extra={"onlyModifier": False, "prepTime": 10},
        )
        item.children.append(layout.groups[n % len(layout.groups)])
        biz.entities[iid] = item
        cid = layout.categories[min(n // per_category, len(layout.categories) - 1)]
        biz.entities[cid].children.append(iid)
    return biz


def _price(amount: int) -> dict[str, dict[str, dict[str, float]]]:
    each = {"price": float(amount), "takeAwayPrice": float(amount)}
    return {"1": {"IDR": dict(each)}, "6": {"IDR": dict(each)}}


def build_world(config: SeedConfig) -> World:
    """A fresh world for ``config``."""
    world = World()
    layouts = [demo_layout()] + [
        bench_layout(k, config.stores_per_business, config.items_per_business) for k in range(1, config.businesses + 1)
    ]
    for layout in layouts:
        biz = build_business(layout)
        world.businesses[biz.id] = biz
        key = f"pk_{biz.id}"
        world.credentials[key] = Credential(key, f"sk_{biz.id}_sandbox", biz.id, ALL_SCOPES)
    world.credentials["pk_398_revoked"] = Credential("pk_398_revoked", "sk_revoked", 398, ALL_SCOPES, revoked=True)
    world.credentials["pk_398_readonly"] = Credential("pk_398_readonly", "sk_readonly", 398, frozenset({"menus:read"}))
    return world


def default_credentials(business_id: int) -> tuple[str, str]:
    """The seeded all-scopes credential of a business."""
    return f"pk_{business_id}", f"sk_{business_id}_sandbox"
