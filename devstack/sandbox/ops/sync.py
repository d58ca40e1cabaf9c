"""syncMenuToStores (``POST /menus/sync``) and populateStores (``POST /menus/populate``).

Body ``{stores*: [{brandID, branchID}], sections*: {"<sectionID>": {sequence*: int,
availableTimes: AvailableTimes | {}}}, fieldIncludeOnSync?: [str]}``.

Sync copies the business-level state of each named section (and everything under it) into each
store, except that the store's existing overrides of fields on the persist list are kept. The default
persist list is ``availableTimes``, ``isEnabled``, ``visibilities``, ``blackoutDates``; names in
``fieldIncludeOnSync`` are taken off it, so the store's override of that field is dropped and the store
follows the business value again (``availableTimes`` concerns sections only). Then the body is
written into the store: the section ``sequence``, and a non-empty ``availableTimes`` as the store's
schedule for that section. ``availableTimes: {}`` sets nothing, so the store falls back to the
section's business schedule unless it keeps a schedule of its own under the persist list.

400 ``request_invalid`` when slots of one weekday overlap, or when a non-empty schedule collides
with one the store keeps for that section (``availableTimes`` persisted and the store holds a
different schedule). Everything is checked for every store before anything is written.

Populate is the same for stores without any menu rows; stores that have rows are skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.sandbox import validate as v
from devstack.sandbox.envelope import ApiError, invalid, not_found
from devstack.sandbox.ops.context import OpContext, resolve_stores
from devstack.sandbox.schedules import parse_available_times
from devstack.sandbox.world import Business, Entity, Store, store_key_str

DEFAULT_PERSIST = frozenset({"availableTimes", "isEnabled", "visibilities", "blackoutDates"})
FIELD_OF_NAME = {"isEnabled": "enabled", "visibilities": "visibilities", "availableTimes": "availableTimes"}


@dataclass(frozen=True)
class SectionSync:
    section: Entity
    sequence: int
    available_times: dict[str, Any]


@dataclass(frozen=True)
class SyncRequest:
    stores: list[Store]
    sections: list[SectionSync]
    persist: frozenset[str]


def parse_sync(ctx: OpContext) -> SyncRequest:
    body, biz = ctx.body, ctx.business
    pairs = v.zone_stores(v.required(body, "stores"), "stores", min_items=1)
    raw_sections = v.required(body, "sections")
    if not isinstance(raw_sections, dict) or not raw_sections:
        raise invalid("sections", "must be a non-empty object keyed by section id")
    include = body.get("fieldIncludeOnSync")
    if include is None:
        include = []
    if not isinstance(include, list) or not all(isinstance(n, str) for n in include):
        raise invalid("fieldIncludeOnSync", "must be an array of field names")
    sections: list[SectionSync] = []
    for raw_id, spec in raw_sections.items():
        where = f"sections.{raw_id}"
        if not v.is_digits(raw_id):
            raise invalid(where, "section ids must be integers as strings")
        if not isinstance(spec, dict):
            raise invalid(where, "must be an object {sequence, availableTimes}")
        sequence = v.req_int(v.required(spec, "sequence", f"{where}."), f"{where}.sequence")
        times = spec.get("availableTimes")
        times = parse_available_times({} if times is None else times, f"{where}.availableTimes")
        section = biz.entity(int(raw_id), "section")
        if section is None:
            raise not_found(f"section {raw_id}")
        sections.append(SectionSync(section, sequence, times))
    stores = resolve_stores(biz, pairs)
    return SyncRequest(stores, sections, DEFAULT_PERSIST - set(include))


def _subtree(business: Business, root: Entity) -> list[Entity]:
    out: list[Entity] = []
    stack = [root]
    seen: set[int] = set()
    while stack:
        entity = stack.pop()
        if entity.id in seen:
            continue
        seen.add(entity.id)
        out.append(entity)
        stack.extend(business.entities[c] for c in entity.children if c in business.entities)
    return out


def _slots(day: Any) -> list[tuple[int, int]]:
    if not isinstance(day, dict) or day.get("disabled"):
        return []
    return [(int(slot["startTime"]), int(slot["endTime"])) for slot in day.get("slots", [])]


def _overlaps(kept: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """True when a slot of ``incoming`` overlaps a slot the store keeps on the same weekday.

    Sending the very schedule the store keeps is not a collision.
    """
    if kept == incoming:
        return False
    for weekday, day in incoming.items():
        for start, end in _slots(day):
            for kept_start, kept_end in _slots(kept.get(weekday)):
                if start < kept_end and kept_start < end:
                    return True
    return False


def check_collisions(request: SyncRequest) -> None:
    if "availableTimes" not in request.persist:
        return
    for store in request.stores:
        for item in request.sections:
            kept = store.overrides.get(item.section.id, {}).get("availableTimes")
            if item.available_times and kept is not None and _overlaps(kept, item.available_times):
                raise ApiError(
                    "request_invalid",
                    f"sections.{item.section.id}.availableTimes: overlaps the schedule store "
                    f"{store_key_str(store.key)} keeps for this section",
                    details={"field": f"sections.{item.section.id}.availableTimes", "store": store_key_str(store.key)},
                )


def apply_sync(business: Business, store: Store, request: SyncRequest) -> None:
    dropped = [FIELD_OF_NAME[n] for n in FIELD_OF_NAME if n not in request.persist]
    for item in request.sections:
        if dropped:
            for entity in _subtree(business, item.section):
                row = store.overrides.get(entity.id)
                if not row:
                    continue
                for name in dropped:
                    row.pop(name, None)
                if not row:
                    del store.overrides[entity.id]
        row = store.overrides.setdefault(item.section.id, {})
        row["sequence"] = item.sequence
        if item.available_times:
            row["availableTimes"] = item.available_times
    store.has_rows = True


def sync(ctx: OpContext) -> dict[str, Any]:
    request = parse_sync(ctx)
    check_collisions(request)
    for store in request.stores:
        apply_sync(ctx.business, store, request)
    return {"success": len(request.stores), "failed": 0}


def populate(ctx: OpContext) -> dict[str, Any]:
    request = parse_sync(ctx)
    fresh = [s for s in request.stores if not s.has_menu_rows()]
    for store in fresh:
        apply_sync(ctx.business, store, request)
    return {"success": len(request.stores), "failed": 0}
