"""Field validators for request bodies; each failure is a 400 ``request_invalid`` naming the field.

JSON booleans are never accepted where a number is expected (``True`` is not ``1`` here).
"""

from __future__ import annotations

import json
import math
from typing import Any

from devstack.sandbox.envelope import ApiError, invalid

_MISSING = object()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def loads(raw: bytes) -> Any:
    """Strict JSON: no NaN or Infinity; too deep nesting fails like any other bad JSON (ValueError)."""
    try:
        return json.loads(raw, parse_constant=_no_constants, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    if not raw.strip():
        raise invalid("body", "a JSON object is required")
    try:
        value = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"body: not valid JSON ({exc.__class__.__name__})"
        raise ApiError("request_invalid", message, details={"field": "body"}) from None
    if not isinstance(value, dict):
        raise invalid("body", "must be a JSON object")
    return value


def is_digits(value: Any) -> bool:
    """An ASCII decimal string ("12"; not "²" or "-1"), short enough to be an id."""
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def req_int(value: Any, field: str, *, minimum: int | None = None) -> int:
    if not is_int(value):
        raise invalid(field, "must be an integer")
    if minimum is not None and value < minimum:
        raise invalid(field, f"must be >= {minimum}")
    return int(value)


def opt_bool(body: dict[str, Any], key: str, default: bool, prefix: str = "") -> bool:
    """A boolean field where missing or null reads as ``default``."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(prefix + key, "must be a boolean")
    return value


def required(body: dict[str, Any], key: str, prefix: str = "") -> Any:
    value = body.get(key, _MISSING)
    if value is _MISSING or value is None:
        raise invalid(prefix + key, "is required")
    return value


def int_list(value: Any, field: str, *, min_items: int = 0) -> list[int]:
    if not isinstance(value, list):
        raise invalid(field, "must be an array of integers")
    if len(value) < min_items:
        raise invalid(field, f"must hold at least {min_items} item(s)")
    for i, item in enumerate(value):
        if not is_int(item):
            raise invalid(f"{field}[{i}]", "must be an integer")
    return [int(v) for v in value]


def zone_stores(value: Any, field: str = "zoneStores", *, min_items: int = 0) -> list[tuple[int, int]]:
    """``[{brandID, branchID}, ...]`` as ``(brand, branch)`` pairs, order kept, duplicates dropped."""
    if not isinstance(value, list):
        raise invalid(field, "must be an array of {brandID, branchID}")
    if len(value) < min_items:
        raise invalid(field, f"must hold at least {min_items} item(s)")
    out: list[tuple[int, int]] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise invalid(f"{field}[{i}]", "must be an object {brandID, branchID}")
        brand = req_int(required(entry, "brandID", f"{field}[{i}]."), f"{field}[{i}].brandID")
        branch = req_int(required(entry, "branchID", f"{field}[{i}]."), f"{field}[{i}].branchID")
        if (brand, branch) not in out:
            out.append((brand, branch))
    return out


def visibilities(value: Any, field: str = "visibilities") -> dict[str, bool]:
    """A provider-id-string to bool map."""
    if not isinstance(value, dict):
        raise invalid(field, "must be an object of provider id to boolean")
    for key, flag in value.items():
        if not (is_digits(key) and int(key) > 0):
            raise invalid(f"{field}.{key}", "provider ids must be positive integers as strings")
        if not isinstance(flag, bool):
            raise invalid(f"{field}.{key}", "must be a boolean")
    return {str(int(k)): bool(v) for k, v in value.items()}


def locale_text(value: Any, field: str, *, required_non_empty: bool = False) -> dict[str, str]:
    """``{"<ISO 639-1>": text}``."""
    if not isinstance(value, dict):
        raise invalid(field, "must be an object of language code to text")
    if required_non_empty and not value:
        raise invalid(field, "must hold at least one language")
    for key, text in value.items():
        if not isinstance(text, str):
            raise invalid(f"{field}.{key}", "must be a string")
    return dict(value)
