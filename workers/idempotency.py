"""Idempotency keys for klikit writes (design.md I3).

A key is derived from (business, operation, canonical body, newest version in the
call, replay nonces). The same write retried gets the same key; any other write
(other body, newer version, operator replay with a new key) gets another one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

MAX_KEY_LENGTH = 64
_PREFIX = "ms1-"


def canonical_json(body: Any) -> str:
    """JSON with sorted keys and no spaces: equal bodies give equal text."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def idempotency_key(
    business_id: int, operation: str, body: Any, newest_version: str, nonces: Sequence[int] = ()
) -> str:
    """The key of one write: ``ms1-`` + 60 hex characters of a SHA-256 (64 characters in all)."""
    material = "\n".join(
        [
            str(business_id),
            operation,
            canonical_json(body),
            newest_version,
            ",".join(str(n) for n in sorted(nonces) if n),
        ]
    )
    key = _PREFIX + hashlib.sha256(material.encode()).hexdigest()[: MAX_KEY_LENGTH - len(_PREFIX)]
    assert len(key) <= MAX_KEY_LENGTH
    return key
