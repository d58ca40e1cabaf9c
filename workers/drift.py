"""Comparing the ledger with what klikit published. Pure.

:func:`find_drift` takes the ledger's targets of one business (one moment, see
:meth:`workers.ledger.Ledger.view`) and store-mode menu readings of some of its stores,
and sorts every *settled* target (applied at its desired version, nothing newer
pending, not dead-lettered) into:

- **matched**: every store read shows the desired value;
- **drift**: klikit shows something else where menusync's write should be in force: a
  store-level target at its store, or a business-level target at *every* store read
  (klikit lost the write, or someone changed the business row in klikit's tools);
- **store_override**: a business-level target that only some stores contradict. klikit
  keeps store overrides across business edits (PersistFieldOnSync), so such a store may
  carry an override menusync never wrote: reported, not repaired;
- **absent**: the store's menu does not contain the entity, or shows no such field.

A store where the business also holds a store-level target for the same field is judged
by that target alone. Targets that are pending or dead-lettered are skipped: a write is
on its way, or an operator already knows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from klikit.menu_tree import EntityValues, MenuSnapshot
from workers.changes import Target
from workers.ledger import TargetState

DRIFT = "drift"
STORE_OVERRIDE = "store_override"
ABSENT = "absent"


@dataclass(frozen=True)
class Finding:
    """One target that klikit does not show as menusync holds it."""

    target: str
    kind: str
    version: str
    desired: Any
    published: dict[str, Any]
    """Store key -> the value that store shows (``None`` when absent)."""

    @property
    def level(self) -> str:
        return Target.from_key(self.target).level


@dataclass
class DriftReport:
    stores_read: tuple[str, ...] = ()
    matched: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


def published_value(target: Target, values: EntityValues, desired: Any = None) -> Any:
    """The value of ``target`` as a menu reading shows it (``None``: not shown).

    A per-channel visibility target reads its one channel (absent from the map = hidden); an older
    map-valued visibility target reads the channels its desired map names.
    """
    if target.is_channel_visibility():
        assert target.provider is not None
        return values.visible_on(target.provider)
    if target.field == "visibilities" and isinstance(desired, dict):
        if values.visibilities is None:
            return None
        return {p: values.visible_on(int(p)) for p in desired}
    return values.get(target.field)


def _shown(target: Target, menu: MenuSnapshot, desired: Any = None) -> Any:
    values = menu.values(target.level, target.entity_id)
    return None if values is None else published_value(target, values, desired)


def shown_at(target: Target, menus: Mapping[str, MenuSnapshot], desired: Any = None) -> dict[str, Any]:
    """Store key -> the value each store read shows for ``target`` (its own store, or every store)."""
    if target.store is not None:
        store = target.store.key()
        return {store: _shown(target, menus[store], desired)} if store in menus else {}
    return {store: _shown(target, menu, desired) for store, menu in sorted(menus.items())}


def _field_key(target: Target) -> tuple[str, int, str, int | None]:
    return (target.level, target.entity_id, target.field, target.provider)


def find_drift(states: Mapping[str, TargetState], menus: Mapping[str, MenuSnapshot]) -> DriftReport:
    """Compare settled targets with the store menus read (store key -> reading)."""
    report = DriftReport(stores_read=tuple(sorted(menus)))
    if not menus:
        return report
    parsed = {key: Target.from_key(key) for key in states}
    # Stores where a store-level target governs a field: the business-level one is not judged there.
    governed: dict[tuple[str, int, str, int | None], set[str]] = defaultdict(set)
    for target in parsed.values():
        if target.store is not None:
            governed[_field_key(target)].add(target.store.key())
    for key in sorted(states):
        state, target = states[key], parsed[key]
        if not state.settled:
            continue
        if target.store is not None:
            store = target.store.key()
            if store not in menus:
                continue
            judged = {store: _shown(target, menus[store], state.value)}
        else:
            skip = governed.get(_field_key(target), set())
            judged = {store: _shown(target, menu, state.value) for store, menu in menus.items() if store not in skip}
            if not judged:
                continue
        kind = _classify(target, state.value, judged)
        if kind is None:
            report.matched.append(key)
        else:
            report.findings.append(Finding(key, kind, state.version, state.value, judged))
    return report


def _classify(target: Target, desired: Any, judged: Mapping[str, Any]) -> str | None:
    if any(shown is None for shown in judged.values()):
        return ABSENT
    differing = [store for store, shown in judged.items() if shown != desired]
    if not differing:
        return None
    if target.store is not None or len(differing) == len(judged):
        return DRIFT
    return STORE_OVERRIDE
