"""The pure core of the store and menu operations, and the reset's ledger script on real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from config.redis import Keys
from workers import operations as ops
from workers.changes import Change, Store, Target
from workers.ledger import Ledger
from workers.scripts import script

B = 398
HERE, THERE = Store(brand_id=5297, branch_id=1293), Store(brand_id=5297, branch_id=5913)


def test_populate_verdict_uses_every_sign_of_rows() -> None:
    assert ops.populate_verdict(0, 0, False).populate
    assert ops.populate_verdict(12, 0, False) == ops.PopulateVerdict(False, 12, "has 12 rows; use sync")
    assert not ops.populate_verdict(0, 2, False).populate
    assert "populated by menusync before" in ops.populate_verdict(0, 0, True).reason


def test_inputs_are_parsed_or_refused_naming_the_option() -> None:
    assert ops.parse_store("5297:1293") == HERE
    assert ops.parse_int_list("6826, 6827,6826", "--sections") == [6826, 6827]
    assert ops.parse_prices(["1:IDR:50000", "6:IDR:55000.5:52000"]) == {
        "1": {"IDR": {"price": 50000, "takeAwayPrice": 50000}},
        "6": {"IDR": {"price": 55000.5, "takeAwayPrice": 52000}},
    }
    assert ops.parse_locale_text(["en=Margherita", "id=Margherita"], "--title") == {
        "en": "Margherita",
        "id": "Margherita",
    }
    refusals: list[tuple[Any, str]] = [
        (lambda: ops.parse_store("5297"), "--store"),
        (lambda: ops.parse_int_list("x", "--sections"), "--sections"),
        (lambda: ops.parse_prices(["1:IDR"]), "--price"),
        (lambda: ops.parse_prices(["1:IDR:-5"]), "--price"),
        (lambda: ops.parse_locale_text(["eng=Pizza"], "--title"), "--title"),
        (lambda: ops.check_request_id("has space"), "--request-id"),
    ]
    for call, option in refusals:
        with pytest.raises(ops.InvalidInput) as caught:
            call()
        assert caught.value.field == option


def test_build_item_checks_every_rule() -> None:
    good: dict[str, Any] = {"title": {"en": "Pizza"}, "prices": {"1": {"IDR": {"price": 1, "takeAwayPrice": 1}}}}
    item = ops.build_item(**good, sku="P-1", visible=[1, 6], only_modifier=True)
    assert item.wire()["onlyModifier"] is True and item.wire()["visibilities"] == {"1": True, "6": True}
    for patch, field in [
        ({"prices": {"6": {"IDR": {"price": 1, "takeAwayPrice": 1}}}}, "prices"),
        ({"title": {}}, "title"),
        ({"title": {"EN": "Pizza"}}, "title.EN"),
        ({"vat": -0.5}, "vat"),
        ({"sku": "S" * 51}, "sku"),
        ({"visible": []}, "visible"),
    ]:
        with pytest.raises(ops.InvalidInput) as caught:
            ops.build_item(**{**good, **patch})
        assert caught.value.field == field
    assert ops.idempotency_key("item", B, "x" * 40).startswith("ms-op-item-398-")
    assert len(ops.idempotency_key("populate", B, "x" * 40)) <= 64


def _record(ledger: Ledger, store: Store | None, entity: int) -> tuple[str, str]:
    target = Target(business_id=B, store=store, level="item", entity_id=entity, field="enabled")
    (version,) = ledger.record([Change(id=f"c{entity}", target=target, value=False, occurred_at_ms=1_795_000_000_000)])
    assert version is not None
    ledger.mark_applied(B, [(target.key(), version)])
    return target.key(), version


def _run(r: Any, keys: Keys, mode: str, *scopes: str) -> list[Any]:
    names = ("desired", "dver", "cid", "aver", "pending", "nonce", "dead", "drift", "suspect")
    k = [keys.business(B, n) for n in names] + [keys.flush_dirty(B), keys.flush_scheduled(B)]
    k += [keys.attention_of(B, "pending")]
    reply: list[Any] = script(r, "ops_store_targets")(keys=k, args=[1, mode, 60_000, B, *scopes])
    return reply


def test_reset_script_repends_or_forgets_the_store_targets_only(r: Any, keys: Keys) -> None:
    ledger = Ledger(r, keys)
    here, _ = _record(ledger, HERE, 101)
    dead, dead_version = _record(ledger, HERE, 102)
    there, _ = _record(ledger, THERE, 101)
    business, _ = _record(ledger, None, 101)
    ledger.mark_dead(B, [(dead, dead_version)], "dl-1")
    r.delete(keys.flush_scheduled(B))

    send, count, left, *targets = _run(r, keys, "reapply", HERE.key())
    assert (send, int(count), int(left), targets) == ("send", 1, 1, [here])
    assert [row.target.key() for row in ledger.pending(B)] == [here]
    assert ledger.pending(B)[0].nonce == 1  # a new idempotency key
    assert r.exists(keys.flush_scheduled(B))

    send, count, left, *targets = _run(r, keys, "forget", HERE.key())
    assert (send, int(count), sorted(targets)) == ("", 2, sorted([here, dead]))
    assert set(ledger.all_desired(B)) == {there, business}
    assert ledger.pending_count(B) == 0 and ledger.dead_targets(B) == {}
    assert r.hget(keys.business(B, "nonce"), here) is None and r.hget(keys.business(B, "aver"), here) is None
