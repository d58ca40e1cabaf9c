"""The call planner: exhaustive properties over generated ledger rows (pure, no I/O)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.changes import Store, Target, make_version
from workers.ledger import PendingRow
from workers.planner import ENABLE_OPERATION, VISIBILITY_OPERATION, PlanContext, plan_calls

STORES = [
    Store(brand_id=5297, branch_id=1293),
    Store(brand_id=5297, branch_id=5913),
    Store(brand_id=1615, branch_id=1294),
]
CTX = PlanContext(business_id=398, max_ids=7, all_stores=tuple(STORES), provider_ids=(1, 6))

scopes = st.sampled_from([None, *STORES])
enable_levels = st.sampled_from(["section", "category", "item", "modifier"])
vis_levels = st.sampled_from(["section", "category", "item", "modifier_group", "modifier"])
vis_maps = st.dictionaries(st.sampled_from(["1", "6", "9"]), st.booleans(), min_size=1, max_size=3)
schedules = st.sampled_from(
    [
        {"0": {"disabled": False, "slots": [{"startTime": 700, "endTime": 1030}]}},
        {"1": {"disabled": True, "slots": []}},
        {},
    ]
)


@st.composite
def rows(draw: st.DrawFn) -> list[PendingRow]:
    out: dict[str, PendingRow] = {}
    n = draw(st.integers(min_value=0, max_value=60))
    for i in range(n):
        kind = draw(st.sampled_from(["enabled", "visibilities", "available_times"]))
        scope = draw(scopes)
        if kind == "enabled":
            level, value = draw(enable_levels), draw(st.booleans())
        elif kind == "visibilities":
            level, value = draw(vis_levels), draw(vis_maps)
        else:
            level, value = "section", draw(schedules)
        entity = draw(st.integers(min_value=1, max_value=25))
        if level == "modifier":
            entity += 1000  # modifiers are items in klikit: one id space, so no shared ids
        target = Target(business_id=398, store=scope, level=level, entity_id=entity, field=kind)  # type: ignore[arg-type]
        out[target.key()] = PendingRow(
            target=target, value=value, version=make_version(1_000 + i, i), change_id=f"c{i}"
        )
    return list(out.values())


def _effect(calls: list) -> dict[str, object]:
    """What the calls set, per target key (business-level schedules expand to every store)."""
    effect: dict[str, object] = {}
    for call in calls:
        body = call.body
        stores = [Store(brand_id=z["brandID"], branch_id=z["branchID"]) for z in body.get("zoneStores", [])]
        if call.operation.startswith("enable_"):
            levels = [lvl for lvl, op in ENABLE_OPERATION.items() if op == call.operation]
            for entity in body["ids"]:
                for level in levels:
                    for scope in stores or [None]:
                        t = Target(business_id=398, store=scope, level=level, entity_id=entity, field="enabled")  # type: ignore[arg-type]
                        effect[t.key()] = body["isEnabled"]
        elif call.operation.startswith("set_"):
            level = next(lvl for lvl, op in VISIBILITY_OPERATION.items() if op == call.operation)
            for scope in stores or [None]:
                t = Target(business_id=398, store=scope, level=level, entity_id=call.path_id, field="visibilities")  # type: ignore[arg-type]
                effect[t.key()] = body["visibilities"]
        else:
            assert call.operation == "sync_menu_to_stores"
            assert body["fieldIncludeOnSync"] == ["availableTimes"]
            for z in body["stores"]:
                store = Store(brand_id=z["brandID"], branch_id=z["branchID"])
                for section, spec in body["sections"].items():
                    t = Target(
                        business_id=398, store=store, level="section", entity_id=int(section), field="available_times"
                    )
                    effect[t.key()] = spec["availableTimes"]
    return effect


@settings(max_examples=300, deadline=None)
@given(rows())
def test_every_row_is_carried_and_the_calls_make_it_true(pending: list[PendingRow]) -> None:
    calls = plan_calls(pending, CTX)
    carried: dict[str, int] = defaultdict(int)
    for call in calls:
        for key, _ in call.targets:
            carried[key] += 1
    assert sorted(carried) == sorted(r.target.key() for r in pending)
    # Only business-level schedules may ride more than one call (one per store group).
    for key, n in carried.items():
        target = next(r.target for r in pending if r.target.key() == key)
        assert n == 1 or (target.field == "available_times" and target.store is None)
    effect = _effect(calls)
    by_key = {r.target.key(): r for r in pending}
    for row in pending:
        if row.target.field != "available_times":
            assert effect[row.target.key()] == row.value
            continue
        stores = STORES if row.target.store is None else [row.target.store]
        for store in stores:
            store_key = row.target.model_copy(update={"store": store}).key()
            business_key = row.target.model_copy(update={"store": None}).key()
            candidates = [r for r in (by_key.get(store_key), by_key.get(business_key)) if r is not None]
            newest = max(candidates, key=lambda r: r.version)
            assert effect[store_key] == newest.value


@settings(max_examples=200, deadline=None)
@given(rows())
def test_calls_are_minimal_per_group_and_respect_the_id_cap(pending: list[PendingRow]) -> None:
    calls = plan_calls(pending, CTX)
    for call in calls:
        if call.operation.startswith("enable_"):
            assert 1 <= len(call.body["ids"]) <= CTX.max_ids
            assert call.body["ids"] == sorted(set(call.body["ids"]))
            assert isinstance(call.body["isEnabled"], bool)
    # Enable calls per (operation, value): the fewer of folding by exact store set and by single store.
    by_set: dict[tuple, set[int]] = defaultdict(set)
    by_store: dict[tuple, set[int]] = defaultdict(set)
    stores_of: dict[tuple, set] = defaultdict(set)
    for row in pending:
        if row.target.field == "enabled":
            op = ENABLE_OPERATION[row.target.level]
            stores_of[(op, row.value, row.target.entity_id)].add(row.target.store.key() if row.target.store else None)
            by_store[(op, row.value, row.target.store.key() if row.target.store else None)].add(row.target.entity_id)
    for (op, value, entity), stores in stores_of.items():
        store_set = tuple(sorted(s for s in stores if s))
        if None in stores:
            by_set[(op, value, ())].add(entity)
        if store_set:
            by_set[(op, value, store_set)].add(entity)
    per_op_value: dict[tuple, int] = defaultdict(int)
    for call in calls:
        if call.operation.startswith("enable_"):
            per_op_value[(call.operation, call.body["isEnabled"])] += 1
    for (op, value), n in per_op_value.items():
        set_calls = sum(-(-len(ids) // CTX.max_ids) for (o, v, _), ids in by_set.items() if (o, v) == (op, value))
        store_calls = sum(-(-len(ids) // CTX.max_ids) for (o, v, _), ids in by_store.items() if (o, v) == (op, value))
        assert n == min(set_calls, store_calls)


@settings(max_examples=200, deadline=None)
@given(rows())
def test_plans_are_deterministic_and_keys_unique(pending: list[PendingRow]) -> None:
    first, second = plan_calls(pending, CTX), plan_calls(list(reversed(pending)), CTX)
    assert [c.idempotency_key for c in first] == [c.idempotency_key for c in second]
    keys = [c.idempotency_key for c in first]
    assert len(keys) == len(set(keys))
    assert all(len(k) <= 64 for k in keys)


def test_a_burst_across_200_items_and_3_stores_folds_into_one_write_per_value_and_store() -> None:
    pending = []
    for i in range(1000):
        item = 1 + i % 200
        store = STORES[i % 3]
        t = Target(business_id=398, store=store, level="item", entity_id=item, field="enabled")
        pending.append(PendingRow(target=t, value=(i // 600) % 2 == 0, version=make_version(i, i), change_id=str(i)))
    latest = {r.target.key(): r for r in pending}
    calls = plan_calls(list(latest.values()), PlanContext(business_id=398, max_ids=500))
    assert len(calls) <= 6


def test_disable_enable_disable_of_one_item_gives_three_distinct_keys() -> None:
    t = Target(business_id=398, store=None, level="item", entity_id=101, field="enabled")
    keys = []
    for i, value in enumerate([False, True, False]):
        row = PendingRow(target=t, value=value, version=make_version(1000 + i, i), change_id=str(i))
        keys.append(plan_calls([row], CTX)[0].idempotency_key)
    assert len(set(keys)) == 3
    same = PendingRow(target=t, value=False, version=make_version(1000, 0), change_id="0")
    assert plan_calls([same], CTX)[0].idempotency_key == keys[0]


def test_a_replay_nonce_changes_the_key() -> None:
    t = Target(business_id=398, store=None, level="item", entity_id=101, field="enabled")
    row = PendingRow(target=t, value=False, version=make_version(1, 1), change_id="x")
    bumped = PendingRow(target=t, value=False, version=make_version(1, 1), change_id="x", nonce=1)
    assert plan_calls([row], CTX)[0].idempotency_key != plan_calls([bumped], CTX)[0].idempotency_key
