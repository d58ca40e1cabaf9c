"""``GET /v1/businesses/{id}/history``: the change history as JSON, for operator tokens.

``Authorization: Bearer <operator token>`` (``MENUSYNC_OPERATOR_TOKENS``, ``[name=]scope:token``);
401 without a valid one, 403 for a business outside its scope. Query: ``target``
(``item:101@5297:1293``), ``since`` (``2h``, epoch ms or ISO 8601), ``source``, ``outcome``,
``limit`` (1-1000, default 100) and ``cursor`` (the ``next_cursor`` of the previous page).
Answers ``{"business_id", "entries": [...newest first], "next_cursor": id | null}``; 400 names the
bad parameter.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from producers.access import Grant, match_token
from workers import history
from workers.history import FilterError


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")


def build_api_router(client: Any, keys: Any, grants: list[Grant]) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/businesses/{business_id}/history", summary="The change history of a business")
    async def business_history(request: Request, business_id: str) -> Response:
        if not (business_id.isascii() and business_id.isdigit()) or len(business_id) > 16 or int(business_id) <= 0:
            detail = "business_id must be a positive integer"
            return _json(400, {"error": "invalid_path", "detail": detail, "field": "business_id"})
        return await _history(request, int(business_id))

    async def _history(request: Request, business_id: int) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        grant = match_token(given, grants) if given else None
        if scheme.lower() != "bearer" or grant is None:
            return _json(401, {"error": "unauthorized", "detail": "missing or invalid operator bearer token"})
        if not grant.allows(business_id):
            detail = f"{grant.name} may not read business {business_id}"
            return _json(403, {"error": "forbidden", "detail": detail, "field": "business_id"})
        q = request.query_params
        limit_text = q.get("limit", "100")
        if not (limit_text.isascii() and limit_text.isdigit()) or not 1 <= int(limit_text) <= 1000:
            return _json(400, {"error": "invalid_query", "detail": "limit must be 1-1000", "field": "limit"})
        try:
            since = history.parse_since(q["since"]) if q.get("since") else None
            entries, cursor = await run_in_threadpool(
                lambda: history.read_history(
                    client,
                    keys,
                    business_id,
                    target=q.get("target") or None,
                    source=q.get("source") or None,
                    outcome=q.get("outcome") or None,
                    since_ms=since,
                    cursor=q.get("cursor") or None,
                    limit=int(limit_text),
                )
            )
        except FilterError as exc:
            return _json(400, {"error": "invalid_query", "detail": str(exc), "field": exc.field})
        return _json(
            200,
            {"business_id": business_id, "entries": [e.as_dict() for e in entries], "next_cursor": cursor},
        )

    return router
