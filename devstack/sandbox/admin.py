"""The admin API under ``/_sandbox`` (no auth): faults, scripts, call record, state, reset, credentials.

- ``GET /_sandbox/health`` -> ``{"ok": true}``
- ``GET /_sandbox/faults`` -> the current fault config; ``PUT`` merges the given fields into it and
  returns the result; ``DELETE`` restores the start-up faults.
- ``POST /_sandbox/script`` ``{"method", "path", "responses": [...], "business_id"?}`` queues canned
  responses; ``GET`` lists pending scripts; ``DELETE`` clears them.
- ``GET /_sandbox/calls?since=<seq>&business_id=`` -> list of call records; ``DELETE`` clears it.
- ``GET /_sandbox/state/{business_id}`` -> the raw model (see ``state_view``).
- ``POST /_sandbox/reset`` -> reseed; clear calls, idempotency records, rate buckets and scripts;
  restore the start-up faults.
- ``POST /_sandbox/credentials`` ``{"partner_key", "secret_key", "business_id", "scopes", "revoked"}``
  adds or replaces a credential (the answer never shows the secret).
- ``POST /_sandbox/stores`` ``{"business_id", "brand_id", "branch_id", "has_menu_rows"?: false}`` adds
  a store (a new brand id is added to the business); by default it has no menu rows yet.
- ``POST /_sandbox/clock`` ``{"advance_s": float}`` moves the sandbox clock forward (ages idempotency
  records); returns ``{"offset_s"}``.
- ``POST /_sandbox/tamper`` ``{"business_id", "level", "id", "field", "value", "store"?: {"brand_id",
  "branch_id"}, "republish"?: false}`` edits klikit behind menusync's back, as klikit's own tools
  would: the business row (no ``store``) or a store override; ``republish`` rebuilds the snapshots of
  the touched stores (business row: every store already published) so store-mode reads show it.
Errors use the partner error envelope.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.sandbox.effective import effective_map
from devstack.sandbox.envelope import ApiError, error_body, new_request_id
from devstack.sandbox.faults import Script, ScriptedResponse
from devstack.sandbox.menu_view import render_sections
from devstack.sandbox.state import SandboxState
from devstack.sandbox.state_view import render_state
from devstack.sandbox.validate import loads
from devstack.sandbox.world import Brand, Credential, Snapshot, Store, store_key_str

_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
#: Fields ``/_sandbox/tamper`` can edit, with the JSON type of their value and the entity attribute.
TAMPER_FIELDS: dict[str, type] = {"enabled": bool, "visibilities": dict, "availableTimes": dict}
TAMPER_ATTRIBUTES = {"enabled": "enabled", "visibilities": "visibilities", "availableTimes": "available_times"}


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(new_request_id(), exc.code, exc.message, exc.details), status_code=exc.status)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        value = loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise ApiError("request_invalid", "body: not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError("request_invalid", "body: must be a JSON object")
    return value


def _int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError("request_invalid", f"{name}: must be an integer", details={"field": name})
    return value


def build_admin(state: SandboxState) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def get_faults(request: Request) -> Response:
        return JSONResponse(state.faults.config.to_json())

    async def put_faults(request: Request) -> Response:
        body = await _json_object(request)
        try:
            config = state.faults.config.merged(body)
        except (ValueError, TypeError) as exc:
            raise ApiError("request_invalid", f"faults: {exc}") from None
        state.faults.set(config)
        return JSONResponse(config.to_json())

    async def delete_faults(request: Request) -> Response:
        state.faults.restore()
        return JSONResponse(state.faults.config.to_json())

    async def post_script(request: Request) -> Response:
        body = await _json_object(request)
        method = body.get("method")
        path = body.get("path")
        responses = body.get("responses")
        business_id = body.get("business_id")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise ApiError("request_invalid", "method: must be an HTTP method", details={"field": "method"})
        if not isinstance(path, str) or not path.startswith("/"):
            raise ApiError("request_invalid", "path: must be an absolute path", details={"field": "path"})
        if not isinstance(responses, list) or not responses:
            raise ApiError("request_invalid", "responses: must be a non-empty array", details={"field": "responses"})
        if business_id is not None and (not isinstance(business_id, int) or isinstance(business_id, bool)):
            raise ApiError("request_invalid", "business_id: must be an integer", details={"field": "business_id"})
        try:
            parsed = deque(ScriptedResponse.parse(r, i) for i, r in enumerate(responses))
        except ValueError as exc:
            raise ApiError("request_invalid", str(exc)) from None
        script = Script(method.upper(), path.split("?", 1)[0], business_id, parsed)
        state.faults.add_script(script)
        return JSONResponse(script.to_json())

    async def get_scripts(request: Request) -> Response:
        return JSONResponse([s.to_json() for s in state.faults.scripts])

    async def delete_script(request: Request) -> Response:
        state.faults.scripts.clear()
        return JSONResponse({"cleared": True})

    async def get_calls(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since") or 0)
            raw_biz = request.query_params.get("business_id")
            business_id = int(raw_biz) if raw_biz else None
        except ValueError:
            raise ApiError("request_invalid", "since and business_id must be integers") from None
        return JSONResponse([c.to_json() for c in state.calls.since(since, business_id)])

    async def delete_calls(request: Request) -> Response:
        state.calls.clear()
        return JSONResponse({"cleared": True, "last_seq": state.calls.last_seq})

    async def get_state(request: Request) -> Response:
        business = state.world.businesses.get(int(request.path_params["business_id"]))
        if business is None:
            raise ApiError("resource_not_found", "business not found")
        return JSONResponse(render_state(business))

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def post_credentials(request: Request) -> Response:
        body = await _json_object(request)
        partner_key = body.get("partner_key")
        secret_key = body.get("secret_key")
        business_id = _int_field(body, "business_id")
        scopes = body.get("scopes", ["menus:read", "menus:write", "brands:read", "visibility:write"])
        revoked = body.get("revoked", False)
        if not isinstance(partner_key, str) or not partner_key or ":" in partner_key:
            raise ApiError("request_invalid", "partner_key: must be a non-empty string without ':'")
        existing = state.world.credentials.get(partner_key)
        if secret_key is None and existing is not None:
            secret_key = existing.secret_key
        if not isinstance(secret_key, str) or not secret_key:
            raise ApiError("request_invalid", "secret_key: must be a non-empty string")
        if business_id not in state.world.businesses:
            raise ApiError("resource_not_found", "business not found")
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ApiError("request_invalid", "scopes: must be an array of strings")
        if not isinstance(revoked, bool):
            raise ApiError("request_invalid", "revoked: must be a boolean")
        credential = Credential(partner_key, secret_key, business_id, frozenset(scopes), revoked)
        state.world.credentials[partner_key] = credential
        return JSONResponse(credential.public())

    async def post_store(request: Request) -> Response:
        body = await _json_object(request)
        business = state.world.businesses.get(_int_field(body, "business_id"))
        if business is None:
            raise ApiError("resource_not_found", "business not found")
        brand_id, branch_id = _int_field(body, "brand_id"), _int_field(body, "branch_id")
        has_rows = body.get("has_menu_rows", False)
        if not isinstance(has_rows, bool):
            raise ApiError("request_invalid", "has_menu_rows: must be a boolean")
        for other in state.world.businesses.values():
            taken = any(b == branch_id for _, b in other.stores) or brand_id in other.brands
            if other is not business and taken:
                raise ApiError("request_invalid", "brand or branch id belongs to another business")
        if (brand_id, branch_id) in business.stores:
            raise ApiError("request_invalid", "store exists already")
        business.brands.setdefault(brand_id, Brand(brand_id, f"Brand {brand_id}"))
        business.stores[(brand_id, branch_id)] = Store(brand_id, branch_id, f"Branch {branch_id}", has_rows=has_rows)
        return JSONResponse({"business_id": business.id, "brand_id": brand_id, "branch_id": branch_id})

    async def post_clock(request: Request) -> Response:
        body = await _json_object(request)
        advance = body.get("advance_s")
        if not isinstance(advance, int | float) or isinstance(advance, bool) or advance < 0:
            raise ApiError("request_invalid", "advance_s: must be a number >= 0")
        state.clock_offset_s += float(advance)
        return JSONResponse({"offset_s": state.clock_offset_s})

    async def post_tamper(request: Request) -> Response:
        # An edit made in klikit's own tools, behind menusync's back: drift for the read-back to find.
        body = await _json_object(request)
        business = state.world.businesses.get(_int_field(body, "business_id"))
        if business is None:
            raise ApiError("resource_not_found", "business not found")
        entity = business.entities.get(_int_field(body, "id"))
        if entity is None or entity.level != body.get("level"):
            raise ApiError("resource_not_found", "no entity with that id at that level")
        name = body.get("field")
        if name not in TAMPER_FIELDS or (name == "availableTimes" and entity.level != "section"):
            raise ApiError("request_invalid", f"field: one of {sorted(TAMPER_FIELDS)} (availableTimes: sections)")
        value = body.get("value")
        if not isinstance(value, TAMPER_FIELDS[name]):
            raise ApiError("request_invalid", f"value: wrong type for {name}")
        republish = body.get("republish", False)
        if not isinstance(republish, bool):
            raise ApiError("request_invalid", "republish: must be a boolean")
        raw_store = body.get("store")
        if raw_store is None:
            setattr(entity, TAMPER_ATTRIBUTES[name], value)
            stores = [s for s in business.stores.values() if s.snapshot is not None]
        else:
            if not isinstance(raw_store, dict):
                raise ApiError("request_invalid", "store: must be {brand_id, branch_id} or null")
            store = business.stores.get((_int_field(raw_store, "brand_id"), _int_field(raw_store, "branch_id")))
            if store is None:
                raise ApiError("resource_not_found", "store not found")
            store.overrides.setdefault(entity.id, {})[name] = value
            stores = [store]
        republished = []
        if republish:
            for store in stores:
                previous = store.snapshot
                store.snapshot = Snapshot(
                    published_at=state.now(),
                    provider_ids=previous.provider_ids if previous else [1],
                    publish_count=(previous.publish_count if previous else 0) + 1,
                    scheduled_at=None,
                    effective=effective_map(business, store),
                    sections=render_sections(business, store),
                )
                republished.append(store_key_str(store.key))
        return JSONResponse({"tampered": True, "republished": republished})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(ApiError("resource_not_found", f"no route {request.method} {request.url.path}"))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc)

    routes = [
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", put_faults, methods=["PUT", "PATCH"]),
        Route("/_sandbox/faults", delete_faults, methods=["DELETE"]),
        Route("/_sandbox/script", post_script, methods=["POST"]),
        Route("/_sandbox/script", get_scripts, methods=["GET"]),
        Route("/_sandbox/script", delete_script, methods=["DELETE"]),
        Route("/_sandbox/calls", get_calls, methods=["GET"]),
        Route("/_sandbox/calls", delete_calls, methods=["DELETE"]),
        Route("/_sandbox/state/{business_id:int}", get_state, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/credentials", post_credentials, methods=["POST"]),
        Route("/_sandbox/stores", post_store, methods=["POST"]),
        Route("/_sandbox/clock", post_clock, methods=["POST"]),
        Route("/_sandbox/tamper", post_tamper, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, ApiError: api_error})
