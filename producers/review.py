"""The review store: events kept for an operator, never retried.

``P:review`` is a Redis stream capped near :data:`MAX_ENTRIES` (``XADD MAXLEN ~``), one entry per
event whose POS ids have no mapping (``kind=unmapped``) or that could not be parsed
(``kind=invalid``). Fields: ``kind``, ``source``, ``event_id``, ``reason`` (at most
:data:`MAX_REASON_BYTES`), ``raw`` (the first :data:`MAX_RAW_BYTES` bytes of the raw event, cut at a
character boundary), ``raw_bytes`` (the event's full length) and ``at_ms``. An entry therefore
stays under about 7 KB whatever the sender puts in the event, and the stream under about
:data:`MAX_ENTRIES` entries. ``menusync mappings unmapped`` lists
them; ``menusync mappings show-unmapped ID`` prints one with its raw event.
"""

from __future__ import annotations

from typing import Any

import redis

from config.redis import Keys
from workers import clock

MAX_ENTRIES = 10_000
MAX_RAW_BYTES = 4 * 1024
MAX_REASON_BYTES = 2 * 1024


def _cut(data: bytes, limit: int) -> str:
    """The first ``limit`` bytes as text, never splitting a UTF-8 character."""
    return data[:limit].decode("utf-8", errors="ignore") if len(data) > limit else data.decode("utf-8", "replace")


def review_key(keys: Keys) -> str:
    return keys("review")


def queue_review(
    pipe: Any, keys: Keys, *, kind: str, source: str, event_id: str, reason: str, raw: bytes | str
) -> None:
    """Queue an ``XADD`` of one review entry on a pipeline (or run it on a client)."""
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="replace")
    pipe.xadd(
        review_key(keys),
        {
            "kind": kind,
            "source": source,
            "event_id": _cut(event_id.encode("utf-8", errors="replace"), 400),
            "reason": _cut(reason.encode("utf-8", errors="replace"), MAX_REASON_BYTES),
            "raw": _cut(data, MAX_RAW_BYTES),
            "raw_bytes": str(len(data)),
            "at_ms": str(clock.now_ms()),
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
