"""The response envelope: ``{"request_id", "data"}`` on success, ``{"request_id", "error"}`` otherwise.

``ApiError`` is raised anywhere in request handling and turned into the error envelope; its code and
status follow the partner-API error table.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

STATUS_OF_CODE: dict[str, int] = {
    "auth_missing": 401,
    "auth_invalid_credential": 401,
    "auth_revoked": 403,
    "auth_forbidden": 403,
    "request_invalid": 400,
    "request_missing_idempotency_key": 400,
    "request_invalid_range": 400,
    "resource_not_found": 404,
    "resource_unmapped": 404,
    "state_invalid_transition": 409,
    "state_idempotency_conflict": 409,
    "rate_limit_exceeded": 429,
    "downstream_unavailable": 502,
    "internal": 500,
}


class ApiError(Exception):
    """An error answer: HTTP status, stable ``code``, human ``message`` and optional ``details``."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS_OF_CODE.get(code, 400)
        self.details = details or {}
        self.headers = headers or {}


def invalid(field: str, problem: str) -> ApiError:
    """A 400 ``request_invalid`` whose message names the offending field."""
    return ApiError("request_invalid", f"{field}: {problem}", details={"field": field})


def not_found(what: str) -> ApiError:
    return ApiError("resource_not_found", f"{what} not found")


def new_request_id() -> str:
    return f"req_{uuid.uuid4()}"


def ok_body(request_id: str, data: Any) -> dict[str, Any]:
    return {"request_id": request_id, "data": data}


def error_body(request_id: str, code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "error": {"code": code, "message": message, "details": details or {}}}


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
