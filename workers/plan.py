"""``menusync plan``: desired against published, target by target, writing nothing.

:func:`plan_business` reads the stores' published menus (store-mode ``getMenu``, through
the rate budget) and the ledger, and answers one row per target: what menusync wants, what
each store shows, and the verdict: ``ok``, ``drift`` (a read-back would write it again),
``store_override``, ``absent``, ``pending`` (a write is on its way) or ``dead`` (set aside
in the dead letters). Operators run it before they trust a sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.changes import Store, Target
from workers.drift import find_drift, shown_at
from workers.reconcile import ReconcileOutcome, read_store_menus
from workers.runtime import Runtime


@dataclass(frozen=True)
class PlanRow:
    target: str
    desired: Any
    version: str
    verdict: str
    published: dict[str, Any]


@dataclass
class PlanReport:
    business_id: int
    stores_read: list[str]
    rows: list[PlanRow] = field(default_factory=list)
    unknown_stores: list[str] = field(default_factory=list)
    unreadable_stores: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.verdict] = out.get(row.verdict, 0) + 1
        return out


def plan_business(rt: Runtime, business_id: int, store_keys: Sequence[str] | None = None) -> PlanReport:
    """Compare the ledger with the published menus of ``store_keys`` (default: every store)."""
    stores = [Store.from_key(k) for k in store_keys] if store_keys else list(rt.stores(business_id))
    outcome = ReconcileOutcome(business_id, "plan")
    menus = read_store_menus(rt, business_id, stores, outcome)
    states = rt.ledger.view(business_id)
    report = find_drift(states, menus)
    verdicts = {f.target: f.kind for f in report.findings}
    plan = PlanReport(business_id, sorted(menus), [], outcome.unknown_stores, outcome.unreadable_stores)
    wanted = {s.key() for s in stores}
    for key in sorted(states):
        state, target = states[key], Target.from_key(key)
        if target.store is not None and target.store.key() not in wanted:
            continue
        if state.dead:
            verdict = "dead"
        elif not state.settled:
            verdict = "pending"
        else:
            verdict = verdicts.get(key, "ok" if key in report.matched else "unread")
        plan.rows.append(PlanRow(key, state.value, state.version, verdict, shown_at(target, menus, state.value)))
    return plan
