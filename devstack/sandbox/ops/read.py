"""getMenu (``GET /menus?brand_id=&branch_id=``).

Both parameters: store mode, read from the store's published snapshot (a store never published has
an empty ``sections`` list; an unknown store is 404). Neither: business mode, rendered live. Only
one: 400 ``request_invalid``.
"""

from __future__ import annotations

from typing import Any

from devstack.sandbox.envelope import ApiError, invalid, not_found
from devstack.sandbox.menu_view import branch_info, business_info, render_sections
from devstack.sandbox.ops.context import OpContext


def _int_param(ctx: OpContext, name: str) -> int | None:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None


def get_menu(ctx: OpContext) -> dict[str, Any]:
    brand_id, branch_id = _int_param(ctx, "brand_id"), _int_param(ctx, "branch_id")
    biz = ctx.business
    if brand_id is None and branch_id is None:
        return {"menu": {"businessInfo": business_info(biz), "sections": render_sections(biz, None)}}
    if brand_id is None or branch_id is None:
        raise ApiError(
            "request_invalid",
            "brand_id and branch_id must be passed together or omitted together",
            details={"field": "brand_id" if brand_id is None else "branch_id"},
        )
    store = biz.stores.get((brand_id, branch_id))
    if store is None:
        raise not_found(f"store (brand_id {brand_id}, branch_id {branch_id})")
    sections = store.snapshot.sections if store.snapshot is not None else []
    return {"menu": {"branchInfo": branch_info(biz, store), "sections": sections}}
