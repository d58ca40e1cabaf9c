"""The in-memory model: businesses, their brands, stores, menu entities, overrides and snapshots.

A business owns every entity id it holds; ids are unique across all businesses, so a foreign id is
simply absent from ``Business.entities``. Business rows carry the live business-level values; a
store's override row holds only the fields written for that store; the effective value of a field at
a store is its override if present, else the business value. A published snapshot freezes the
effective values of every entity at publish time; nothing else changes it.

All mutation happens synchronously inside one request handler on the event loop, so there are no
locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEVELS = ("section", "category", "item", "modifier_group", "modifier")
StoreKey = tuple[int, int]
LinkKey = tuple[int, int]


def store_key_str(key: StoreKey) -> str:
    return f"{key[0]}:{key[1]}"


@dataclass
class Entity:
    """A menu entity at one level with its business-level (live) values.

    ``children`` lists the ids one level down: section -> categories, category -> items,
    item -> modifier groups, modifier group -> modifiers (the link rows, ordered by sequence).
    ``available_times`` is only meaningful for sections (``{}`` = always available).
    """

    id: int
    level: str
    title: dict[str, str]
    enabled: bool = True
    visibilities: dict[str, bool] = field(default_factory=dict)
    available_times: dict[str, Any] = field(default_factory=dict)
    sequence: int = 0
    description: dict[str, str] = field(default_factory=dict)
    sku: str | None = None
    prices: dict[str, Any] = field(default_factory=dict)
    vat: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)


@dataclass
class Snapshot:
    """A store's published menu: ``effective`` (level -> id -> values) and the rendered ``sections``."""

    published_at: float
    provider_ids: list[int]
    publish_count: int
    scheduled_at: str | None
    effective: dict[str, dict[int, dict[str, Any]]]
    sections: list[dict[str, Any]]


@dataclass
class Store:
    """One ``(brand, branch)`` store with its override rows and last published snapshot."""

    brand_id: int
    branch_id: int
    title: str
    has_rows: bool = True
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    link_overrides: dict[LinkKey, bool] = field(default_factory=dict)
    snapshot: Snapshot | None = None

    @property
    def key(self) -> StoreKey:
        return (self.brand_id, self.branch_id)

    def has_menu_rows(self) -> bool:
        return self.has_rows or bool(self.overrides) or bool(self.link_overrides)


@dataclass
class Brand:
    id: int
    title: str


@dataclass
class Business:
    """One klikit business: brands, stores, the menu and its modifier links."""

    id: int
    title: str
    country_id: int = 4
    currency_id: int = 4
    currency_code: str = "IDR"
    currency_symbol: str = "Rp"
    language_code: str = "id"
    brands: dict[int, Brand] = field(default_factory=dict)
    stores: dict[StoreKey, Store] = field(default_factory=dict)
    entities: dict[int, Entity] = field(default_factory=dict)
    section_ids: list[int] = field(default_factory=list)
    links: dict[LinkKey, dict[str, Any]] = field(default_factory=dict)
    brand_link_overrides: dict[int, dict[LinkKey, bool]] = field(default_factory=dict)
    next_id: int = 0

    def entity(self, entity_id: int, *levels: str) -> Entity | None:
        """The entity if this business owns it at one of ``levels`` (any level when none given)."""
        found = self.entities.get(entity_id)
        if found is None or (levels and found.level not in levels):
            return None
        return found

    def of_level(self, level: str) -> list[Entity]:
        return [e for e in self.entities.values() if e.level == level]

    def allocate_id(self) -> int:
        self.next_id += 1
        return self.next_id


@dataclass
class Credential:
    """A partner credential bound to one business. The secret is never rendered anywhere."""

    partner_key: str
    secret_key: str
    business_id: int
    scopes: frozenset[str]
    revoked: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "partner_key": self.partner_key,
            "business_id": self.business_id,
            "scopes": sorted(self.scopes),
            "revoked": self.revoked,
        }

    def __repr__(self) -> str:
        return f"Credential(partner_key={self.partner_key!r}, business_id={self.business_id}, secret_key=***)"


@dataclass
class World:
    businesses: dict[int, Business] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
