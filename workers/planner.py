"""The call planner: pending ledger rows in, the fewest klikit calls out. Pure.

- ``enabled`` targets fold into bulk ``ids`` per (operation, value, store set), split
  at ``max_ids``, or per (operation, value, store) where that takes fewer calls;
  modifiers are items, so they share ``enableItems`` with items.
- ``visibilities``: targets are per channel (``workers.changes``), but klikit replaces an
  entity's whole map and hides every provider the map leaves out. So per (entity, scope) the
  planner composes the whole map with :func:`compose_visibility_map`: klikit's current map
  (``PlanContext.visibility_shown``, read by the flush) overlaid with menusync's newest value
  for every provider it holds a target for, pending (the rows) or settled
  (``PlanContext.visibility_settled``). Every channel change of one entity and scope rides
  one call, which settles all of them; stores whose composed maps are equal share a call. A
  scope the flush gave no reading for is left unplanned (the flush holds such rows back:
  the planner never guesses a provider's value).
- ``available_times``: one ``syncMenuToStores`` per store set with
  ``fieldIncludeOnSync: ["availableTimes"]``; a business-level schedule goes to
  every store of the business, so it may ride several syncs: a target is applied
  only when every call carrying it has succeeded (the flush counts them).

A store set of ``()`` is business level (``zoneStores`` omitted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from klikit.models import EnableUpdateRequest, SyncRequest, SyncSection, UpdateVisibilityRequest, ZoneStore
from klikit.paths import ENABLE_OPERATION, VISIBILITY_OPERATION
from workers.changes import Store, Target
from workers.idempotency import canonical_json, idempotency_key
from workers.ledger import PendingRow

# Modifiers are items with ``onlyModifier: true``: they are enabled through enableItems.
SYNC_OPERATION = "sync_menu_to_stores"


@dataclass(frozen=True)
class PlannedCall:
    """One klikit write and the ledger targets it makes true."""

    operation: str
    body: dict[str, Any]
    idempotency_key: str
    targets: tuple[tuple[str, str], ...]
    """(target key, version) pairs settled when the call succeeds."""
    path_id: int | None = None
    stores: tuple[Store, ...] = ()
    """Stores the call touches; empty for a business-level write."""
    change_ids: tuple[str, ...] = field(default=())

    @property
    def newest_version(self) -> str:
        return max(v for _, v in self.targets)


@dataclass(frozen=True)
class VisibilityScope:
    """One entity's visibility map at one scope (``store=None``: the business map)."""

    level: str
    entity_id: int
    store: Store | None = None

    @classmethod
    def of(cls, target: Target) -> VisibilityScope:
        return cls(level=target.level, entity_id=target.entity_id, store=target.store)

    def sort_key(self) -> tuple[str, int, str]:
        return (self.level, self.entity_id, self.store.key() if self.store else "")

    def target(self, business_id: int, provider: int) -> Target:
        """The per-channel target of ``provider`` in this scope."""
        return Target(
            business_id=business_id,
            store=self.store,
            level=self.level,  # type: ignore[arg-type]
            entity_id=self.entity_id,
            field="visibilities",
            provider=provider,
        )


@dataclass(frozen=True)
class ChannelValue:
    """menusync's desired visibility on one provider, at a version."""

    provider: int
    visible: bool
    version: str


@dataclass(frozen=True)
class PlanContext:
    """What the planner needs besides the rows; all plain data."""

    business_id: int
    max_ids: int = 500
    all_stores: tuple[Store, ...] = ()
    provider_ids: tuple[int, ...] = (1,)
    section_sequence: Mapping[int, int] = field(default_factory=dict)
    visibility_shown: Mapping[VisibilityScope, Mapping[str, bool]] = field(default_factory=dict)
    """Per scope with pending visibility rows: the map klikit shows now. ``{}`` where menusync
    holds a target for every provider klikit lists (nothing to read)."""
    visibility_settled: Mapping[VisibilityScope, Sequence[ChannelValue]] = field(default_factory=dict)
    """Per scope: menusync's applied per-channel values that are not pending (from the ledger)."""


def compose_visibility_map(shown: Mapping[str, bool], held: Iterable[ChannelValue]) -> dict[str, bool]:
    """The whole visibility map to send for one entity and scope. Pure.

    ``shown`` is what klikit shows now (a provider absent from it is hidden); ``held`` are
    menusync's values, pending and settled, possibly several per provider: the newest version
    wins. The result is ``shown`` with every held provider set to its newest value, keys in
    numeric order.
    """
    newest: dict[int, ChannelValue] = {}
    for value in held:
        current = newest.get(value.provider)
        if current is None or current.version < value.version:
            newest[value.provider] = value
    out = {str(int(k)): bool(v) for k, v in shown.items()}
    for provider, value in newest.items():
        out[str(provider)] = value.visible
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def row_channel_values(row: PendingRow) -> list[ChannelValue]:
    """The per-channel values a pending visibility row carries (a legacy whole-map row: one per provider)."""
    provider = row.target.provider
    if provider is not None:
        return [ChannelValue(provider, bool(row.value), row.version)]
    value = row.value if isinstance(row.value, Mapping) else {}
    return [ChannelValue(int(p), bool(v), row.version) for p, v in value.items() if str(p).isdigit()]


def _zone_stores(stores: Iterable[Store]) -> list[ZoneStore]:
    return [ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id) for s in sorted(stores, key=lambda s: s.key())]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def _make_call(
    ctx: PlanContext,
    operation: str,
    body: dict[str, Any],
    rows: Sequence[PendingRow],
    stores: Iterable[Store],
    path_id: int | None = None,
) -> PlannedCall:
    newest = max(r.version for r in rows)
    key = idempotency_key(ctx.business_id, operation, body, newest, [r.nonce for r in rows])
    return PlannedCall(
        operation=operation,
        body=body,
        idempotency_key=key,
        targets=tuple(sorted((r.target.key(), r.version) for r in rows)),
        path_id=path_id,
        stores=tuple(sorted(set(stores), key=lambda s: s.key())),
        change_ids=tuple(sorted({r.change_id for r in rows})),
    )


def _group_by_store_set(rows: Iterable[PendingRow], entity_key: Any) -> dict[tuple[Store, ...], list[PendingRow]]:
    """Group rows of one (level, value) by the exact set of stores each entity is targeted at."""
    per_entity: dict[Any, list[PendingRow]] = defaultdict(list)
    for row in rows:
        per_entity[entity_key(row)].append(row)
    groups: dict[tuple[Store, ...], list[PendingRow]] = defaultdict(list)
    for entity_rows in per_entity.values():
        business = [r for r in entity_rows if r.target.store is None]
        stored = [r for r in entity_rows if r.target.store is not None]
        if business:
            groups[()].extend(business)
        if stored:
            store_set = tuple(sorted({r.target.store for r in stored if r.target.store}, key=lambda s: s.key()))
            groups[store_set].extend(stored)
    return groups


def _sorted_groups(
    groups: dict[tuple[Store, ...], list[PendingRow]],
) -> list[tuple[tuple[Store, ...], list[PendingRow]]]:
    return sorted(groups.items(), key=lambda kv: tuple(s.key() for s in kv[0]))


def _group_by_single_store(rows: Iterable[PendingRow]) -> dict[tuple[Store, ...], list[PendingRow]]:
    """Group rows by their one store (business-level rows together under ``()``)."""
    groups: dict[tuple[Store, ...], list[PendingRow]] = defaultdict(list)
    for row in rows:
        groups[(row.target.store,) if row.target.store else ()].append(row)
    return groups


def _enable_calls(
    ctx: PlanContext, operation: str, value: bool, groups: dict[tuple[Store, ...], list[PendingRow]]
) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    for store_set, members in _sorted_groups(groups):
        ids = sorted({r.target.entity_id for r in members})
        for chunk in _chunks(ids, ctx.max_ids):
            chunk_set = set(chunk)
            chunk_rows = [r for r in members if r.target.entity_id in chunk_set]
            request = EnableUpdateRequest(
                ids=list(chunk),
                is_enabled=value,
                zone_stores=[ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id) for s in store_set] or None,
            )
            calls.append(_make_call(ctx, operation, request.wire(), chunk_rows, store_set))
    return calls


def _plan_enable(ctx: PlanContext, rows: list[PendingRow]) -> list[PlannedCall]:
    # Two foldings are both correct: by each entity's exact store set (best when entities
    # share their stores: one call for all of them) and by single store (best for a scattered
    # burst: one call per store). Each (operation, value) takes whichever needs fewer calls.
    calls: list[PlannedCall] = []
    by_operation_value: dict[tuple[str, bool], list[PendingRow]] = defaultdict(list)
    for row in rows:
        by_operation_value[(ENABLE_OPERATION[row.target.level], bool(row.value))].append(row)
    for (operation, value), group in sorted(by_operation_value.items()):
        by_set = _enable_calls(ctx, operation, value, _group_by_store_set(group, lambda r: r.target.entity_id))
        by_store = _enable_calls(ctx, operation, value, _group_by_single_store(group))
        calls.extend(by_set if len(by_set) <= len(by_store) else by_store)
    return calls


def _plan_visibility(ctx: PlanContext, rows: list[PendingRow]) -> list[PlannedCall]:
    by_scope: dict[VisibilityScope, list[PendingRow]] = defaultdict(list)
    for row in rows:
        by_scope[VisibilityScope.of(row.target)].append(row)
    # (level, entity, business level?, composed map) -> the scopes that share it.
    by_map: dict[tuple[str, int, bool, str], list[VisibilityScope]] = defaultdict(list)
    composed: dict[VisibilityScope, dict[str, bool]] = {}
    for scope, scope_rows in by_scope.items():
        shown = ctx.visibility_shown.get(scope)
        if shown is None:
            continue  # nothing known of klikit's map here: never guess it (left unplanned)
        held = [v for r in scope_rows for v in row_channel_values(r)]
        held += list(ctx.visibility_settled.get(scope, ()))
        composed[scope] = compose_visibility_map(shown, held)
        key = (scope.level, scope.entity_id, scope.store is None, canonical_json(composed[scope]))
        by_map[key].append(scope)
    calls: list[PlannedCall] = []
    for (level, entity_id, _, _), scopes in sorted(by_map.items()):
        scopes.sort(key=VisibilityScope.sort_key)
        stores = [s.store for s in scopes if s.store is not None]
        request = UpdateVisibilityRequest(
            visibilities=composed[scopes[0]],
            zone_stores=[ZoneStore(brand_id=s.brand_id, branch_id=s.branch_id) for s in stores] or None,
        )
        members = [r for s in scopes for r in by_scope[s]]
        call = _make_call(ctx, VISIBILITY_OPERATION[level], request.wire(), members, stores, path_id=entity_id)
        calls.append(call)
    return calls


def _plan_schedule(ctx: PlanContext, rows: list[PendingRow]) -> list[PlannedCall]:
    # A business-level schedule goes to every store. Where a store also has its own
    # pending schedule for that section, the newer of the two (by version) is sent.
    per_store: dict[Store, dict[int, PendingRow]] = defaultdict(dict)
    carried: dict[Store, list[PendingRow]] = defaultdict(list)
    business_rows = [r for r in rows if r.target.store is None]
    for row in business_rows:
        for store in ctx.all_stores:
            per_store[store][row.target.entity_id] = row
            carried[store].append(row)
    for row in rows:
        own = row.target.store
        if own is None:
            continue
        carried[own].append(row)
        current = per_store[own].get(row.target.entity_id)
        if current is None or current.version < row.version:
            per_store[own][row.target.entity_id] = row
    # Stores with the same section -> schedule assignment share one sync.
    by_assignment: dict[str, list[Store]] = defaultdict(list)
    for store, assigned in per_store.items():
        signature = canonical_json({str(s): [r.target.key(), r.version] for s, r in sorted(assigned.items())})
        by_assignment[signature].append(store)
    calls: list[PlannedCall] = []
    for _, stores in sorted(by_assignment.items()):
        assigned = per_store[stores[0]]
        request = SyncRequest(
            stores=_zone_stores(stores),
            sections={
                str(section): SyncSection(sequence=int(ctx.section_sequence.get(section, 0)), available_times=row.value)
                for section, row in sorted(assigned.items())
            },
            field_include_on_sync=["availableTimes"],
        )
        body = request.wire()
        # The call settles every row it carries for these stores, including a store's older
        # row that a newer business-level schedule overrides.
        settled = _unique(r for store in stores for r in carried[store])
        calls.append(_make_call(ctx, SYNC_OPERATION, body, settled, stores))
    # A business-level schedule with no store to send it to is left unplanned: the flush
    # dead-letters it with its reason rather than dropping it.
    return calls


def _unique(rows: Iterable[PendingRow]) -> list[PendingRow]:
    seen: dict[str, PendingRow] = {}
    for row in rows:
        seen.setdefault(row.target.key(), row)
    return list(seen.values())


def plan_calls(rows: Sequence[PendingRow], ctx: PlanContext) -> list[PlannedCall]:
    """Plan the klikit writes that make every row true. Deterministic for equal input."""
    enable_rows = [r for r in rows if r.target.field == "enabled"]
    visibility_rows = [r for r in rows if r.target.field == "visibilities"]
    schedule_rows = [r for r in rows if r.target.field == "available_times"]
    return [
        *_plan_enable(ctx, enable_rows),
        *_plan_visibility(ctx, visibility_rows),
        *_plan_schedule(ctx, schedule_rows),
    ]
