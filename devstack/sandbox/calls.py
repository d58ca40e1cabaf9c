"""The call record: one entry per partner call.

``seq`` rises in the order calls finish (so polling with ``since`` never misses a call that was still
running), ``ts`` is the arrival time. Entries hold the method, path, query, idempotency key and parsed
body; never any other header. ``status`` is null when the connection was dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CallRecord:
    seq: int
    ts: float
    business_id: int | None
    method: str
    path: str
    query: str
    idempotency_key: str | None
    body: Any
    status: int | None
    code: str | None
    request_id: str
    replayed: bool
    applied: bool
    fault: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    def __init__(self, max_calls: int) -> None:
        self._calls: deque[CallRecord] = deque(maxlen=max_calls)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, record: CallRecord) -> None:
        self._calls.append(record)

    def since(self, seq: int, business_id: int | None = None) -> list[CallRecord]:
        """Entries with ``seq`` above ``seq`` (oldest first), optionally of one business."""
        out: list[CallRecord] = []
        for record in reversed(self._calls):
            if record.seq <= seq:
                break
            if business_id is None or record.business_id == business_id:
                out.append(record)
        out.reverse()
        return out

    def clear(self) -> None:
        self._calls.clear()

    @property
    def last_seq(self) -> int:
        return self._seq
