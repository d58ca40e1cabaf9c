"""The change history: who changed what, when, from where, and what became of it.

One Redis stream per business, ``history:B``, capped near ``MENUSYNC_HISTORY_MAX_PER_BUSINESS``
entries (``XADD MAXLEN ~``; 0 turns the history off). Entries are only ever appended:

- the record script (``workers/lua/record.lua``) appends one entry per change it is given, in the
  same atomic step that records it, with the outcome ``recorded``, ``superseded`` or ``duplicate``;
- the flush appends ``applied`` (klikit ``request_id``, ``Idempotency-Key``) or ``dead_lettered``
  (error code, dead-letter id) per target; the read-back appends ``drift_repaired``; a replay or a
  drop of a dead letter (command line or console) appends ``replayed`` / ``dropped`` naming who;
- a mapping import from the console appends one ``mappings_imported`` entry per business named.

Entries carry these fields (the record script leaves out the last three, which only outcome
entries fill; a missing field reads as empty)::

    t    target key (business|scope|level|entity|field[|provider]), or "mappings"
    v    desired value JSON, first 512 bytes       src  source: square, shopify, standard, api,
    by   actor: token name, operator, OS user           inventory, cli, timer, console, flush...
    cid  the source's event / change id (<= 200)   ev   event time ms     rx  receive time ms
    out  outcome                                   ver  ledger version
    rid  klikit request_id                         ik   Idempotency-Key   det detail (code, dead-letter id)

Bytes per entry: about 150-200 bytes of stream memory for a typical availability change (measured
with ``MEMORY USAGE`` in ``tests/workers/test_history.py``); at most about 1.3 KB (a 512-byte
value, a 200-byte change id, a 64-byte actor). 100,000 entries per business stay under about
20 MB typical, 130 MB worst case.

Publishes go to a small stream of their own, ``publishes:B`` (the last :data:`PUBLISHES_KEPT`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from config.redis import Keys
from workers import clock

#: Most bytes of a value kept in a history entry (the record script cuts it the same).
MAX_VALUE_BYTES = 512
#: Publishes kept per business.
PUBLISHES_KEPT = 200
#: Entries read at most to answer one history query (a filter that matches little stops here).
SCAN_LIMIT = 200_000
_BATCH = 2_000

OUTCOMES = (
    "recorded",
    "superseded",
    "duplicate",
    "applied",
    "dead_lettered",
    "drift_repaired",
    "replayed",
    "dropped",
    "mappings_imported",
)


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    at_ms: int
    target: str
    value: str
    source: str
    actor: str
    change_id: str
    event_ms: int | None
    received_ms: int | None
    outcome: str
    version: str
    request_id: str
    idempotency_key: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history_key(keys: Keys, business_id: int) -> str:
    return keys.business(business_id, "history")


def publishes_key(keys: Keys, business_id: int) -> str:
    return keys.business(business_id, "publishes")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _entry(entry_id: str, f: dict[str, str]) -> HistoryEntry:
    return HistoryEntry(
        id=entry_id,
        at_ms=int(entry_id.split("-", 1)[0]),
        target=f.get("t", ""),
        value=f.get("v", ""),
        source=f.get("src", ""),
        actor=f.get("by", ""),
        change_id=f.get("cid", ""),
        event_ms=_int(f.get("ev")),
        received_ms=_int(f.get("rx")),
        outcome=f.get("out", ""),
        version=f.get("ver", ""),
        request_id=f.get("rid", ""),
        idempotency_key=f.get("ik", ""),
        detail=f.get("det", ""),
    )


def append_outcomes(
    client: Any,
    keys: Keys,
    business_id: int,
    targets: Iterable[tuple[str, str]],
    outcome: str,
    *,
    max_entries: int,
    source: str,
    actor: str = "",
    request_id: str = "",
    idempotency_key: str = "",
    detail: str = "",
) -> int:
    """Append one ``outcome`` entry per (target key, version), in one pipelined round trip."""
    if max_entries <= 0:
        return 0
    key = history_key(keys, business_id)
    now = str(clock.now_ms())
    pipe = client.pipeline(transaction=False)
    n = 0
    for target, version in targets:
        pipe.xadd(
            key,
            {
                "t": target,
                "v": "",
                "src": source[:32],
                "by": actor[:64],
                "cid": "",
                "ev": "",
                "rx": now,
                "out": outcome,
                "ver": version,
                "rid": (request_id or "")[:128],
                "ik": (idempotency_key or "")[:128],
                "det": detail[:256],
            },
            maxlen=max_entries,
            approximate=True,
        )
        n += 1
    if n:
        pipe.execute()
    return n


def note_publish(
    client: Any,
    keys: Keys,
    business_id: int,
    stores: Sequence[str],
    request_id: str,
    idempotency_key: str,
    outcome: str,
) -> None:
    """Keep one publish (stores, klikit request_id, key, outcome) in ``publishes:B``."""
    client.xadd(
        publishes_key(keys, business_id),
        {
            "stores": " ".join(stores)[:2000],
            "rid": (request_id or "")[:128],
            "ik": (idempotency_key or "")[:128],
            "out": outcome[:64],
        },
        maxlen=PUBLISHES_KEPT,
        approximate=True,
    )


def publishes(client: Any, keys: Keys, business_id: int, count: int = 20) -> list[dict[str, Any]]:
    rows = client.xrevrange(publishes_key(keys, business_id), count=count)
    return [
        {
            "at_ms": int(i.split("-", 1)[0]),
            "stores": f.get("stores", "").split(),
            "request_id": f.get("rid", ""),
            "idempotency_key": f.get("ik", ""),
            "outcome": f.get("out", ""),
        }
        for i, f in rows
    ]


# -- reading ------------------------------------------------------------------------------------

_TARGET = re.compile(
    r"^(?P<level>section|category|item|modifier_group|modifier):(?P<entity>\d{1,16})"
    r"(?:@(?P<scope>\*|\d{1,16}:\d{1,16}))?(?:/(?P<field>enabled|visibilities|available_times))?$"
)
_DURATION = re.compile(r"^(?P<n>\d{1,9})(?P<unit>s|m|h|d)$")


class FilterError(ValueError):
    """A history filter that cannot be read; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def target_matcher(text: str, business_id: int) -> Callable[[str], bool]:
    """``item:101@5297:1293`` (level:entity[@brand:branch|@*][/field]) or a full target key."""
    text = text.strip()
    if "|" in text:
        return lambda key: key == text or key.startswith(text + "|")
    match = _TARGET.match(text)
    if match is None:
        raise FilterError(
            "target", f"target {text[:60]!r} is not level:entity[@brand:branch] (e.g. item:101@5297:1293)"
        )
    level, entity, scope, field = match["level"], match["entity"], match["scope"], match["field"]

    def matches(key: str) -> bool:
        parts = key.split("|")
        if len(parts) < 5 or parts[0] != str(business_id) or parts[2] != level or parts[3] != entity:
            return False
        if scope is not None and parts[1] != scope:
            return False
        return field is None or parts[4] == field

    return matches


def parse_since(text: str, now_ms: int | None = None, field: str = "since") -> int:
    """``90s``, ``30m``, ``2h``, ``7d`` ago, or epoch milliseconds, or ISO 8601 with a zone -> epoch ms."""
    from datetime import datetime

    now = now_ms if now_ms is not None else clock.now_ms()
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        unit = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[match["unit"]]
        return now - int(match["n"]) * unit
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(field, f"{field} {text[:40]!r} is not a duration (2h), epoch ms or ISO 8601 time") from None
    if when.tzinfo is None:
        raise FilterError(field, f"{field} must carry a timezone")
    return int(when.timestamp() * 1000)


def read_history(
    client: Any,
    keys: Keys,
    business_id: int,
    *,
    target: str | None = None,
    source: str | None = None,
    outcome: str | None = None,
    since_ms: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[HistoryEntry], str | None]:
    """Entries newest first matching every filter given; answers (entries, cursor of the next page).

    ``cursor`` is the id of the last entry of the previous page. At most :data:`SCAN_LIMIT` entries
    are read per call; the cursor then points past them (a page may hold fewer than ``limit``).
    """
    if cursor is not None and not re.fullmatch(r"\d{1,16}-\d{1,16}", cursor):
        raise FilterError("cursor", "cursor is not a history entry id")
    match_target = target_matcher(target, business_id) if target else None
    limit = max(1, min(limit, 1_000))
    key = history_key(keys, business_id)
    low = str(since_ms) if since_ms is not None else "-"
    high = f"({cursor}" if cursor else "+"
    out: list[HistoryEntry] = []
    scanned = 0
    last_id: str | None = None
    while scanned < SCAN_LIMIT:
        rows = client.xrevrange(key, max=high, min=low, count=_BATCH)
        if not rows:
            return out, None
        for entry_id, fields in rows:
            scanned += 1
            last_id = entry_id
            if match_target is not None and not match_target(fields.get("t", "")):
                continue
            if source is not None and fields.get("src") != source and fields.get("by") != source:
                continue
            if outcome is not None and fields.get("out") != outcome:
                continue
            out.append(_entry(entry_id, fields))
            if len(out) >= limit:
                return out, entry_id
        if len(rows) < _BATCH:
            return out, None
        high = f"({last_id}"
    return out, last_id


def history_length(client: Any, keys: Keys, business_id: int) -> int:
    return int(client.xlen(history_key(keys, business_id)))


# -- hooks of the workers (``rt`` is a :class:`workers.runtime.Runtime`) ---------------------------


def on_applied(rt: Any, business_id: int, pairs: Sequence[tuple[str, str]], request_id: str | None, key: str) -> None:
    """After ``Ledger.mark_applied``: the targets klikit took, with its request_id and the key."""
    append_outcomes(
        rt.redis,
        rt.keys,
        business_id,
        pairs,
        "applied",
        max_entries=rt.settings.history_max_per_business,
        source="flush",
        request_id=request_id or "",
        idempotency_key=key,
    )


def on_dead(
    rt: Any, business_id: int, pairs: Sequence[tuple[str, str]], code: str, dead_letter_id: str, source: str = "flush"
) -> None:
    """After ``Ledger.mark_dead``: the targets set aside, with the code and the dead letter's id."""
    append_outcomes(
        rt.redis,
        rt.keys,
        business_id,
        pairs,
        "dead_lettered",
        max_entries=rt.settings.history_max_per_business,
        source=source,
        detail=f"{code} {dead_letter_id}",
    )


def on_publish(
    rt: Any, business_id: int, stores: Sequence[str], request_id: str | None, key: str, outcome: str
) -> None:
    note_publish(rt.redis, rt.keys, business_id, stores, request_id or "", key, outcome)
