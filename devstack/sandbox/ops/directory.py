"""listProviders, listBrands (legacy ``data[0].brands``) and listBranches (``{page,size,total,results}``)."""

from __future__ import annotations

from typing import Any

from devstack.sandbox.envelope import invalid
from devstack.sandbox.ops.context import OpContext
from devstack.sandbox.providers import PROVIDERS

MAX_PAGE_SIZE = 1000


def list_providers(ctx: OpContext) -> list[dict[str, Any]]:
    return [dict(p) for p in PROVIDERS]


def list_brands(ctx: OpContext) -> list[dict[str, Any]]:
    biz = ctx.business
    brands = [
        {"id": b.id, "business_id": biz.id, "title": b.title, "logo": None, "banner": None} for b in biz.brands.values()
    ]
    business = {"id": biz.id, "title": biz.title, "address": None, "country_id": biz.country_id}
    return [{"brands": brands, "business": business}]


def _page_param(ctx: OpContext, name: str, default: int, maximum: int) -> int:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    if not 1 <= value <= maximum:
        raise invalid(name, f"must be within 1..{maximum}")
    return value


def list_branches(ctx: OpContext) -> dict[str, Any]:
    biz = ctx.business
    page = _page_param(ctx, "page", 1, 1_000_000)
    size = _page_param(ctx, "size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    stores = sorted(biz.stores.values(), key=lambda s: (s.branch_id, s.brand_id))
    branches: dict[int, dict[str, Any]] = {}
    for store in stores:
        row = branches.setdefault(
            store.branch_id,
            {
                "id": store.branch_id,
                "business_id": biz.id,
                "brand_id": store.brand_id,
                "brand_ids": [],
                "title": store.title,
                "country_id": biz.country_id,
                "currency_id": biz.currency_id,
                "address": None,
            },
        )
        row["brand_ids"].append(store.brand_id)
    rows = list(branches.values())
    start = (page - 1) * size
    return {"page": page, "size": size, "total": len(rows), "results": rows[start : start + size]}
