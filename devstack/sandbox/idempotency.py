"""Idempotency records, scoped per credential, kept for 24 hours.

A record binds a key to the request it first succeeded with (method, path, canonical JSON body) and
the 2xx response it got. The same key with the same request replays that response; with anything
else it is a 409 ``state_idempotency_conflict``. Only successful outcomes are recorded, so a failed
attempt never consumes its key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from devstack.sandbox.envelope import ApiError

WINDOW_S = 24 * 3600.0
MAX_KEY_LENGTH = 64


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(method: str, path: str, body: Any) -> str:
    return hashlib.sha256(f"{method} {path}\n{canonical(body)}".encode()).hexdigest()


def check_key(key: str | None) -> str:
    """The key, or the 400 a write without a usable key gets."""
    if key is None or not key.strip():
        raise ApiError("request_missing_idempotency_key", "Idempotency-Key header is required on writes")
    if len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            "request_invalid",
            f"Idempotency-Key: must be at most {MAX_KEY_LENGTH} characters",
            details={"field": "Idempotency-Key"},
        )
    return key


@dataclass
class Record:
    fingerprint: str
    status: int
    data: Any
    created_at: float


class IdempotencyStore:
    """Records per (partner_key, idempotency key)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Record] = {}
        self._writes_since_purge = 0

    def lookup(self, partner_key: str, key: str, fp: str, now: float) -> Record | None:
        """The record to replay, None for a fresh key, or 409 when the key was used for another request."""
        record = self._records.get((partner_key, key))
        if record is None:
            return None
        if now - record.created_at >= WINDOW_S:
            del self._records[(partner_key, key)]
            return None
        if record.fingerprint != fp:
            raise ApiError(
                "state_idempotency_conflict",
                "Idempotency-Key was already used with a different request",
                details={"idempotency_key": key},
            )
        return record

    def remember(self, partner_key: str, key: str, fp: str, status: int, data: Any, now: float) -> None:
        self._records[(partner_key, key)] = Record(fp, status, data, now)
        self._writes_since_purge += 1
        if self._writes_since_purge >= 10_000:
            self.purge(now)

    def purge(self, now: float) -> None:
        self._writes_since_purge = 0
        expired = [k for k, r in self._records.items() if now - r.created_at >= WINDOW_S]
        for k in expired:
            del self._records[k]

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
