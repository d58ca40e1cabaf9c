"""The channels (klikit providers) an entity can be shown or hidden on, per business.

klikit lists its providers at ``GET /v1/partner/providers``; their ids are the keys of every
visibility map ("1" is klikit's own marketplace, "6" GrabFood, ...). :class:`ProviderDirectory`
reads that list through the business's credential and keeps it in Redis for
:data:`PROVIDERS_CACHE_TTL_S` (``<prefix>:providers:<business>``, JSON
``[{"id", "name"}]``), like the store list, so that the web, the CLI and the workers share one
reading.

Visibility changes may name only listed providers (intake answers 400 naming the others), and
``"replace": true`` hides every listed provider the change does not name.

When the list cannot be read (klikit down, or no credential in this process), intake falls back
to :func:`fallback_providers`: the providers the business's credential publishes to, plus "1".
Those are channels an operator configured for this business, so a change naming them is
meaningful; refusing every visibility change while klikit is down would drop changes that
menusync would otherwise queue and apply once klikit is back, and accepting any id would let a
typo into the ledger that klikit refuses later (a dead letter instead of a 400). A failed reading
is remembered for :data:`PROVIDERS_UNREADABLE_TTL_S` so that requests meanwhile do not each wait
for klikit. A ``replace`` change needs klikit's real list to hide "every other channel": while
klikit's list cannot be read it is refused with 503 (retry later); for a business with no
credential here it is refused with 400 (menusync cannot list that business's channels at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from config.redis import Keys

#: klikit's own marketplace: always a channel of every business.
KLIKIT_PROVIDER_ID = 1
PROVIDERS_CACHE_TTL_S = 600
PROVIDERS_UNREADABLE_TTL_S = 30


@dataclass(frozen=True)
class KnownProviders:
    """The provider ids a business's visibility changes may name, with their display names."""

    ids: frozenset[int]
    names: Mapping[int, str] = field(default_factory=dict)
    source: Literal["klikit", "credential", "none"] = "klikit"
    """``klikit``: klikit's list; ``credential``: the fallback while klikit's list can't be read
    (the credential's providers plus klikit's own); ``none``: no credential for the business here,
    so only klikit's own marketplace is known."""

    @property
    def listed(self) -> bool:
        """Whether these are klikit's own list (not a fallback)."""
        return self.source == "klikit"

    def label(self, provider_id: int) -> str:
        """``GrabFood (6)``, or ``provider 6`` when klikit gave no name."""
        name = self.names.get(provider_id)
        return f"{name} ({provider_id})" if name else f"provider {provider_id}"


class UnknownProviders(ValueError):
    """A visibility change names providers klikit does not list for the business."""

    def __init__(self, unknown: list[int], known: KnownProviders) -> None:
        self.unknown = unknown
        listed = ", ".join(known.label(p) for p in sorted(known.ids))
        source = {
            "klikit": "klikit lists",
            "credential": "are configured (klikit's list cannot be read now)",
            "none": "are known (no klikit credential for this business here)",
        }[known.source]
        names = ", ".join(str(p) for p in unknown)
        super().__init__(f"provider {names} is not a channel of this business; the channels {source}: {listed}")


class ProvidersUnavailable(Exception):
    """klikit's provider list is needed (a ``replace`` change) but cannot be read now: retry later."""


def parse_provider_list(data: Any) -> KnownProviders:
    """klikit's ``listProviders`` data: ``[{id, name, display_name}]`` (also under ``data``/``providers``)."""
    rows = data
    if isinstance(rows, Mapping):
        rows = rows.get("providers", rows.get("data"))
    if not isinstance(rows, list):
        raise ValueError("provider list: not a list")
    names: dict[int, str] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        raw_id = row.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, int | str) or not str(raw_id).isdigit():
            continue
        provider_id = int(raw_id)
        if provider_id <= 0:
            continue
        name = row.get("display_name") or row.get("name") or ""
        names[provider_id] = str(name)
    if not names:
        raise ValueError("provider list: no provider ids")
    return KnownProviders(ids=frozenset(names), names=names, source="klikit")


def fallback_providers(provider_ids: Iterable[int]) -> KnownProviders:
    """The providers accepted while klikit's list cannot be read: these plus klikit's own ("1")."""
    ids = frozenset(provider_ids)
    return KnownProviders(ids=ids | {KLIKIT_PROVIDER_ID}, source="credential" if ids else "none")


class ProviderDirectory:
    """klikit's provider list per business, cached in Redis; ``fetch(business_id)`` reads klikit."""

    def __init__(self, client: Any, keys: Keys, fetch: Callable[[int], Any]) -> None:
        self.r = client
        self.k = keys
        self.fetch = fetch

    def cache_key(self, business_id: int) -> str:
        return self.k.business(business_id, "providers")

    def unreadable_key(self, business_id: int) -> str:
        return self.k.business(business_id, "providers", "unreadable")

    def cached(self, business_id: int) -> KnownProviders | None:
        raw = self.r.get(self.cache_key(business_id))
        if not raw:
            return None
        try:
            return parse_provider_list(json.loads(raw))
        except ValueError:
            return None

    def listed(self, business_id: int) -> KnownProviders:
        """klikit's list (cached); raises the fetch's errors when it must be read and cannot be."""
        hit = self.cached(business_id)
        if hit is not None:
            return hit
        known = parse_provider_list(self.fetch(business_id))
        rows = [{"id": p, "name": known.names.get(p, "")} for p in sorted(known.ids)]
        self.r.set(self.cache_key(business_id), json.dumps(rows), ex=PROVIDERS_CACHE_TTL_S)
        self.r.delete(self.unreadable_key(business_id))
        return known

    def recently_unreadable(self, business_id: int) -> bool:
        return bool(self.r.exists(self.unreadable_key(business_id)))

    def mark_unreadable(self, business_id: int) -> None:
        self.r.set(self.unreadable_key(business_id), 1, ex=PROVIDERS_UNREADABLE_TTL_S)
