"""The operations API: the store and menu operations of ``workers.operations`` over HTTP.

Routes (``Authorization: Bearer <token>``, a token of ``MENUSYNC_OPERATOR_TOKENS``, entries
``[name=]scope:token``; the scope names the businesses the operator may act on)::

    POST /v1/operations/stores/populate   {business_id, stores: [{brand_id, branch_id}], sections?, request_id?}
    GET  /v1/operations/stores/reset      ?business_id=398[&store=5297:1293...]   what a reset would lose
    POST /v1/operations/stores/reset      {business_id, stores?, confirm: <business_id>, mode?: reapply|forget,
                                           request_id?}
    POST /v1/operations/items             {business_id, title: {en: ...}, prices: {"1": {"IDR": {price,
                                           takeAwayPrice?}}}, vat?, sku?, visible?: [1, 6], description?,
                                           modifier_group_id?, request_id?}
    POST /v1/operations/items/link        {business_id, modifier_id, group_id, request_id}
    GET  /v1/operations/audit             ?business_id=&limit=

Answers: 200 with the operation's result (as ``--json`` prints it; klikit's ``request_id`` in it); 400
naming the field (nothing called); 401 no or unknown token; 403 a business outside the token's
scope; 409 a flush holds the business's lease (retry); 422 a business menusync has no credentials
for; 502 klikit refused or failed (``code``, ``status``, ``request_id`` and what was done before).
The audit records name the token's holder (never the token).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from config.logging import register_secrets
from config.settings import Settings
from producers.access import Grant, KnownBusinesses, match_token, parse_grants
from workers import operations as ops
from workers.changes import Store
from workers.runtime import Runtime

log = structlog.get_logger("producers.operations")

MAX_BODY_BYTES = 64 * 1024


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def _json(status: int, body: dict[str, Any] | list[Any]) -> Response:
    return Response(json.dumps(body, default=str).encode(), status_code=status, media_type="application/json")


def _invalid(field: str, detail: str) -> Refused:
    return Refused(400, "invalid_body", f"{field}: {detail}", field=field)


def _int(body: dict[str, Any], name: str, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _invalid(name, "must be a positive integer")
    return value


def _stores(raw: Any, name: str = "stores") -> list[Store]:
    if not isinstance(raw, list):
        raise _invalid(name, "must be an array of {brand_id, branch_id}")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise _invalid(f"{name}[{i}]", "must be {brand_id, branch_id}")
        brand, branch = entry.get("brand_id"), entry.get("branch_id")
        for field, value in (("brand_id", brand), ("branch_id", branch)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _invalid(f"{name}[{i}].{field}", "must be a positive integer")
        out.append(Store(brand_id=brand, branch_id=branch))
    return out


def _int_list(raw: Any, name: str) -> list[int]:
    if not isinstance(raw, list) or not raw or any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
        raise _invalid(name, "must be a non-empty array of integers")
    return list(raw)


def _request_id(body: dict[str, Any]) -> str:
    raw = body.get("request_id")
    if raw is not None and not isinstance(raw, str):
        raise _invalid("request_id", "must be a string")
    try:
        return ops.check_request_id(raw)
    except ops.InvalidInput as exc:
        raise _invalid("request_id", exc.message) from None


def operations_router(settings: Settings, rt: Runtime) -> APIRouter:
    """The ``/v1/operations`` routes, acting through ``rt`` (credentials, Redis, klikit clients)."""
    grants = parse_grants([s.get_secret_value() for s in settings.secret_list("operator_tokens")], "operator token")
    register_secrets(g.secret for g in grants)
    known = KnownBusinesses(settings.credentials_file)
    router = APIRouter(prefix="/v1/operations")

    def authorize(request: Request, business_id: int | None) -> Grant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        grant = match_token(given, grants) if given else None
        if scheme.lower() != "bearer" or grant is None:
            raise Refused(401, "unauthorized", "missing or invalid operator token")
        if business_id is not None:
            if not grant.allows(business_id):
                raise Refused(403, "forbidden", f"{grant.name} may not act on business {business_id}")
            if not known.knows(business_id):
                raise Refused(422, "unknown_business", f"menusync has no klikit credentials for business {business_id}")
        return grant

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise Refused(413, "body_too_large", f"body is over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise Refused(400, "invalid_body", "body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "invalid_body", "body must be a JSON object")
        return body

    async def answer(request: Request, work: Callable[[dict[str, Any], Grant], Any], *, has_body: bool) -> Response:
        try:
            if has_body:
                body = await body_of(request)
            else:
                body = dict(request.query_params)
                if "business_id" in body:
                    if not (body["business_id"].isascii() and body["business_id"].isdigit()):
                        raise _invalid("business_id", "must be a positive integer")
                    body["business_id"] = int(body["business_id"])
                body["store"] = request.query_params.getlist("store")
            business_id = _int(body, "business_id", required=work is not audit)
            grant = authorize(request, business_id)
            result = await run_in_threadpool(work, body, grant)
        except Refused as exc:
            log.info("operation refused", status=exc.status, error=exc.error, detail=exc.detail)
            return _json(exc.status, {"error": exc.error, "detail": exc.detail, **exc.extra})
        except ops.InvalidInput as exc:
            return _json(400, {"error": "invalid_body", "detail": str(exc), "field": exc.field})
        except ops.OperationFailed as exc:
            return _json(502, {"error": "klikit_failed", **exc.to_json()})
        except ops.LeaseBusy as exc:
            return _json(409, {"error": "busy", "detail": str(exc)})
        return _json(200, result)

    def populate(body: dict[str, Any], grant: Grant) -> Any:
        stores = _stores(body.get("stores"))
        if not stores:
            raise _invalid("stores", "name at least one store")
        sections = _int_list(body["sections"], "sections") if body.get("sections") is not None else None
        business_id = body["business_id"]
        return ops.populate(rt, business_id, stores, sections=sections, request_id=_request_id(body), who=grant.name)

    def reset_preview(body: dict[str, Any], grant: Grant) -> Any:
        try:
            stores = [ops.parse_store(s, "store") for s in body.get("store") or []]
        except ops.InvalidInput as exc:
            raise _invalid("store", exc.message) from None
        return ops.reset_preview(rt, body["business_id"], stores or None)

    def reset(body: dict[str, Any], grant: Grant) -> Any:
        business_id = body["business_id"]
        stores = _stores(body["stores"]) if body.get("stores") is not None else []
        if body.get("confirm") != business_id:
            raise _invalid("confirm", f"must repeat the business id ({business_id}): the reset is destructive")
        mode = body.get("mode", "reapply")
        if mode not in ("reapply", "forget"):
            raise _invalid("mode", "must be 'reapply' or 'forget'")
        return ops.reset(
            rt, business_id, stores or None, forget=mode == "forget", request_id=_request_id(body), who=grant.name
        )

    def create(body: dict[str, Any], grant: Grant) -> Any:
        title, prices = body.get("title"), body.get("prices")
        if not isinstance(title, dict):
            raise _invalid("title", "must be an object language -> text")
        if not isinstance(prices, dict) or not all(isinstance(v, dict) for v in prices.values()):
            raise _invalid("prices", "must be an object provider -> currency -> {price, takeAwayPrice}")
        for provider, per_currency in prices.items():
            for currency, each in per_currency.items():
                price = each.get("price") if isinstance(each, dict) else None
                if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
                    raise _invalid(f"prices.{provider}.{currency}.price", "must be a number >= 0")
                if isinstance(each, dict):
                    each.setdefault("takeAwayPrice", price)
        description = body.get("description")
        if description is not None and not isinstance(description, dict):
            raise _invalid("description", "must be an object language -> text")
        sku = body.get("sku")
        if sku is not None and not isinstance(sku, str):
            raise _invalid("sku", "must be a string")
        vat = body.get("vat", 0)
        group = _int(body, "modifier_group_id", required=False)
        item = ops.build_item(
            title=title,
            prices=prices,
            vat=vat,
            sku=sku,
            visible=_int_list(body.get("visible", [1]), "visible"),
            description=description,
            only_modifier=group is not None,
        )
        return ops.create_item(
            rt, body["business_id"], item, group_id=group, request_id=_request_id(body), who=grant.name
        )

    def link(body: dict[str, Any], grant: Grant) -> Any:
        modifier_id, group_id = _int(body, "modifier_id"), _int(body, "group_id")
        assert modifier_id is not None and group_id is not None
        if not isinstance(body.get("request_id"), str):
            raise _invalid("request_id", "the request id of the create is required")
        response = ops.link(
            rt, body["business_id"], modifier_id, group_id, request_id=_request_id(body), who=grant.name
        )
        return {
            "ok": True,
            "operation": "link",
            "modifier_id": modifier_id,
            "group_id": group_id,
            "request_id": response.request_id,
        }

    def audit(body: dict[str, Any], grant: Grant) -> Any:
        business_id = body.get("business_id")
        if business_id is not None and not grant.allows(business_id):
            raise Refused(403, "forbidden", f"{grant.name} may not read business {business_id}")
        limit = body.get("limit", "50")
        if not (str(limit).isascii() and str(limit).isdigit()):
            raise _invalid("limit", "must be a positive integer")
        entries = ops.AuditLog(rt).entries(limit=min(int(limit), 1000), business_id=business_id)
        return [e for e in entries if isinstance(e.get("business_id"), int) and grant.allows(e["business_id"])]

    @router.post("/stores/populate")
    async def populate_route(request: Request) -> Response:
        return await answer(request, populate, has_body=True)

    @router.get("/stores/reset")
    async def reset_preview_route(request: Request) -> Response:
        return await answer(request, reset_preview, has_body=False)

    @router.post("/stores/reset")
    async def reset_route(request: Request) -> Response:
        return await answer(request, reset, has_body=True)

    @router.post("/items")
    async def create_route(request: Request) -> Response:
        return await answer(request, create, has_body=True)

    @router.post("/items/link")
    async def link_route(request: Request) -> Response:
        return await answer(request, link, has_body=True)

    @router.get("/audit")
    async def audit_route(request: Request) -> Response:
        return await answer(request, audit, has_body=False)

    return router
