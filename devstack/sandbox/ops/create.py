"""createSection, createCategory, createItem (also modifier options) and linkModifiersToGroup.

Each create answers ``{id}`` with a fresh id from the business's own id block. As sandbox
extensions, createCategory takes an optional ``sectionID`` and createItem an optional ``categoryID``
to attach the new entity (klikit links them through other calls); unknown fields are ignored.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox import validate as v
from devstack.sandbox.envelope import invalid, not_found
from devstack.sandbox.ops.context import OpContext, resolve_entities
from devstack.sandbox.schedules import parse_available_times
from devstack.sandbox.world import Business, Entity

MAX_SKU = 50


def _parent(business: Business, body: dict[str, Any], field: str, level: str) -> Entity | None:
    raw = body.get(field)
    if raw is None:
        return None
    parent = business.entity(v.req_int(raw, field), level)
    if parent is None:
        raise not_found(f"{level} {raw}")
    return parent


def create_section(ctx: OpContext) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    title = v.locale_text(v.required(body, "title"), "title", required_non_empty=True)
    description = v.locale_text(body.get("description") or {}, "description")
    visibilities = v.visibilities(body["visibilities"]) if body.get("visibilities") is not None else {"1": True}
    times = parse_available_times(body.get("availableTimes") or {}, "availableTimes")
    sequence = v.req_int(body["sequence"], "sequence") if body.get("sequence") is not None else len(biz.section_ids) + 1
    enabled = v.opt_bool(body, "isEnabled", True)
    entity = Entity(biz.allocate_id(), "section", title, enabled, visibilities, times, sequence, description)
    biz.entities[entity.id] = entity
    biz.section_ids.append(entity.id)
    return {"id": entity.id}


def create_category(ctx: OpContext) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    title = v.locale_text(v.required(body, "title"), "title", required_non_empty=True)
    visibilities = v.visibilities(v.required(body, "visibilities"))
    description = v.locale_text(body.get("description") or {}, "description")
    enabled = v.opt_bool(body, "isEnabled", True)
    flags = {k: v.opt_bool(body, k, False) for k in ("isAlcBeverages", "isAgeRestricted", "isHalal", "isMealForOne")}
    section = _parent(biz, body, "sectionID", "section")
    entity = Entity(biz.allocate_id(), "category", title, enabled, visibilities, {}, 0, description, extra=flags)
    biz.entities[entity.id] = entity
    if section is not None:
        section.children.append(entity.id)
        entity.sequence = len(section.children)
    return {"id": entity.id}


def _prices(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("prices", "must be an object provider id -> currency -> {price, takeAwayPrice}")
    for provider, by_currency in value.items():
        where = f"prices.{provider}"
        if not v.is_digits(provider):
            raise invalid(where, "provider ids must be integers as strings")
        if not isinstance(by_currency, dict) or not by_currency:
            raise invalid(where, "must be an object currency code -> {price, takeAwayPrice}")
        for currency, each in by_currency.items():
            if not isinstance(each, dict):
                raise invalid(f"{where}.{currency}", "must be an object {price, takeAwayPrice}")
            for name in ("price", "takeAwayPrice"):
                amount = each.get(name)
                if amount is not None and (not v.is_number(amount) or amount < 0):
                    raise invalid(f"{where}.{currency}.{name}", "must be a number >= 0")
            if each.get("price") is None:
                raise invalid(f"{where}.{currency}.price", "is required")
    if "1" not in value:
        raise invalid("prices.1", "the klikit provider price (provider '1') is required")
    return value


def create_item(ctx: OpContext) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    title = v.locale_text(v.required(body, "title"), "title", required_non_empty=True)
    vat = v.required(body, "vat")
    if not v.is_number(vat) or vat < 0:
        raise invalid("vat", "must be a number >= 0")
    visibilities = v.visibilities(v.required(body, "visibilities"))
    prices = _prices(v.required(body, "prices"))
    description = v.locale_text(body.get("description") or {}, "description")
    sku = body.get("sku")
    if sku is not None and (not isinstance(sku, str) or len(sku) > MAX_SKU):
        raise invalid("sku", f"must be a string of at most {MAX_SKU} characters")
    only_modifier = v.opt_bool(body, "onlyModifier", False)
    prep = body.get("prepTime")
    if prep is not None:
        v.req_int(prep, "prepTime", minimum=0)
    enabled = v.opt_bool(body, "isEnabled", True)
    v.opt_bool(body, "fromAPI", False)
    category = None if only_modifier else _parent(biz, body, "categoryID", "category")
    level = "modifier" if only_modifier else "item"
    extra = {"onlyModifier": only_modifier, "prepTime": prep}
    entity = Entity(biz.allocate_id(), level, title, enabled, visibilities, {}, 0, description, sku, prices, vat, extra)
    biz.entities[entity.id] = entity
    if category is not None:
        category.children.append(entity.id)
        entity.sequence = len(category.children)
    return {"id": entity.id}


def link_modifiers(ctx: OpContext) -> dict[str, Any]:
    body, biz = ctx.body, ctx.business
    group_id = v.req_int(v.required(body, "modifierGroupID"), "modifierGroupID")
    attach = v.required(body, "attach")
    if not isinstance(attach, list):
        raise invalid("attach", "must be an array of {id, sequence}")
    pairs: list[tuple[int, int]] = []
    for i, entry in enumerate(attach):
        if not isinstance(entry, dict):
            raise invalid(f"attach[{i}]", "must be an object {id, sequence}")
        mid = v.req_int(v.required(entry, "id", f"attach[{i}]."), f"attach[{i}].id")
        seq = entry.get("sequence")
        pairs.append((mid, v.req_int(seq, f"attach[{i}].sequence") if seq is not None else i + 1))
    deletes = v.int_list(body["deleteModifierIDs"], "deleteModifierIDs") if body.get("deleteModifierIDs") else []
    (group,) = resolve_entities(biz, [group_id], ("modifier_group",), "modifier group")
    resolve_entities(biz, [m for m, _ in pairs] + deletes, ("modifier",), "modifier")
    for mid in deletes:
        if mid in group.children:
            group.children.remove(mid)
        biz.links.pop((group.id, mid), None)
    for mid, seq in pairs:
        if mid not in group.children:
            group.children.append(mid)
        biz.links[(group.id, mid)] = {
            "enabled": biz.links.get((group.id, mid), {}).get("enabled", True),
            "sequence": seq,
        }
    group.children.sort(key=lambda m: biz.links[(group.id, m)]["sequence"])
    return {"modifierGroupID": group.id, "attached": len(pairs), "deleted": len(deletes)}
