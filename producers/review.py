"""The review store: events kept for an operator, never retried.

``P:review`` is a Redis stream capped near :data:`MAX_ENTRIES` (``XADD MAXLEN ~``), one entry per
event whose POS ids have no mapping (``kind=unmapped``) or that could not be parsed
(``kind=invalid``). Fields: ``kind``, ``source``, ``event_id``, ``reason``, ``raw`` (the raw
event, cut at :data:`MAX_RAW` characters) and ``at_ms``. ``menusync mappings unmapped`` lists
them; ``menusync mappings show-unmapped ID`` prints one with its raw event.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from config.redis import Keys

MAX_ENTRIES = 10_000
MAX_RAW = 64 * 1024


def review_key(keys: Keys) -> str:
    return keys("review")


def queue_review(
    pipe: Any, keys: Keys, *, kind: str, source: str, event_id: str, reason: str, raw: bytes | str
) -> None:
    """Queue an ``XADD`` of one review entry on a pipeline (or run it on a client)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    pipe.xadd(
        review_key(keys),
        {
            "kind": kind,
            "source": source,
            "event_id": event_id,
            "reason": reason[:2000],
            "raw": text[:MAX_RAW],
            "at_ms": str(int(time.time() * 1000)),
        },
        maxlen=MAX_ENTRIES,
        approximate=True,
    )


def list_review(
    client: redis.Redis, keys: Keys, *, count: int = 50, kind: str | None = None
) -> list[tuple[str, dict[str, str]]]:
    """Newest first."""
    r: Any = client
    rows = r.xrevrange(review_key(keys), count=count if kind is None else count * 20)
    out: list[tuple[str, dict[str, str]]] = []
    for entry_id, fields in rows:
        if kind is None or fields.get("kind") == kind:
            out.append((entry_id, fields))
        if len(out) >= count:
            break
    return out


def get_review(client: redis.Redis, keys: Keys, entry_id: str) -> dict[str, str] | None:
    r: Any = client
    rows = r.xrange(review_key(keys), min=entry_id, max=entry_id)
    return dict(rows[0][1]) if rows else None
