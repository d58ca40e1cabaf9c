"""The ledger's per-channel visibility targets on a real Redis: what counts as settled."""

from __future__ import annotations

from typing import Any

from workers.changes import Change, Store, Target
from workers.ledger import Ledger

STORE = Store(brand_id=5297, branch_id=1293)


def channel(provider: int, visible: bool, at_ms: int) -> Change:
    target = Target(business_id=398, store=STORE, level="item", entity_id=101, field="visibilities", provider=provider)
    return Change(id=f"c{provider}-{at_ms}", target=target, value=visible, occurred_at_ms=at_ms)


def test_two_channels_of_one_item_are_two_targets_and_both_hold_in_any_order(r: Any, keys: Any) -> None:
    ledger = Ledger(r, keys)
    newer, older = channel(11, False, 2_000), channel(6, False, 1_000)
    assert ledger.record([newer]) != [None]
    assert ledger.record([older]) != [None], "an older change to another channel is not superseded"
    assert ledger.record([channel(6, True, 500)]) == [None], "an older change to the same channel is"
    assert {row.target.key(): row.value for row in ledger.pending(398)} == {
        newer.target.key(): False,
        older.target.key(): False,
    }


def test_settled_values_are_the_applied_targets_only(r: Any, keys: Any) -> None:
    ledger = Ledger(r, keys)
    applied, pending, dead = channel(6, False, 1_000), channel(11, False, 1_000), channel(9, True, 1_000)
    v_applied, _, v_dead = ledger.record([applied, pending, dead])
    assert v_applied and v_dead
    ledger.mark_applied(398, [(applied.target.key(), v_applied)])
    ledger.mark_dead(398, [(dead.target.key(), v_dead)], "dl-1")
    never = channel(1, True, 1_000).target.key()
    keys_asked = [applied.target.key(), pending.target.key(), dead.target.key(), never]
    assert ledger.settled_values(398, keys_asked) == {applied.target.key(): (False, v_applied)}
    # A newer change to the applied channel makes it pending again: no longer settled.
    ledger.record([channel(6, True, 2_000)])
    assert ledger.settled_values(398, keys_asked) == {}
