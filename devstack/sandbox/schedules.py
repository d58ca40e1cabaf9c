"""AvailableTimes: ``{"0".."6": {"disabled": bool, "slots": [{"startTime": HHMM, "endTime": HHMM}]}}``.

Times are integers HHMM from 0 to 2359 (minutes below 60), each slot with ``startTime < endTime``.
Slots of one weekday may not overlap (touching ends are fine). Parsed schedules are normalized
(slots sorted, ``disabled`` filled in) so two schedules can be compared with ``==``.
"""

from __future__ import annotations

import itertools
from typing import Any

from devstack.sandbox.envelope import invalid
from devstack.sandbox.validate import is_int

WEEKDAYS = tuple(str(d) for d in range(7))


def _hhmm(value: Any, field: str) -> int:
    if not is_int(value) or not 0 <= value <= 2359 or value % 100 >= 60:
        raise invalid(field, "must be a time HHMM between 0 and 2359")
    return int(value)


def parse_available_times(value: Any, field: str) -> dict[str, Any]:
    """A validated, normalized schedule; ``{}`` stays ``{}``."""
    if not isinstance(value, dict):
        raise invalid(field, "must be an object keyed by weekday '0'..'6'")
    out: dict[str, Any] = {}
    for day in sorted(value):
        entry = value[day]
        where = f"{field}.{day}"
        if day not in WEEKDAYS:
            raise invalid(where, "weekday keys must be '0'..'6'")
        if not isinstance(entry, dict):
            raise invalid(where, "must be an object {disabled, slots}")
        disabled = entry.get("disabled", False)
        if disabled is None:
            disabled = False
        if not isinstance(disabled, bool):
            raise invalid(f"{where}.disabled", "must be a boolean")
        raw_slots = entry.get("slots", [])
        if raw_slots is None:
            raw_slots = []
        if not isinstance(raw_slots, list):
            raise invalid(f"{where}.slots", "must be an array")
        slots: list[dict[str, int]] = []
        for i, slot in enumerate(raw_slots):
            if not isinstance(slot, dict):
                raise invalid(f"{where}.slots[{i}]", "must be an object {startTime, endTime}")
            start = _hhmm(slot.get("startTime"), f"{where}.slots[{i}].startTime")
            end = _hhmm(slot.get("endTime"), f"{where}.slots[{i}].endTime")
            if start >= end:
                raise invalid(f"{where}.slots[{i}]", "startTime must be before endTime")
            slots.append({"startTime": start, "endTime": end})
        slots.sort(key=lambda s: (s["startTime"], s["endTime"]))
        for a, b in itertools.pairwise(slots):
            if b["startTime"] < a["endTime"]:
                raise invalid(f"{where}.slots", "slots overlap on this weekday")
        out[day] = {"disabled": disabled, "slots": slots}
    return out
