"""The call planner: exhaustive properties over generated ledger rows (pure, no I/O)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from klikit.menu_tree import EntityValues
from workers.changes import Store, Target, make_version
from workers.ledger import PendingRow
from workers.planner import (
    ENABLE_OPERATION,
    VISIBILITY_OPERATION,
    ChannelValue,
    PlanContext,
    VisibilityScope,
    compose_visibility_map,
    plan_calls,
)

STORES = [
    Store(brand_id=5297, branch_id=1293),
    Store(brand_id=5297, branch_id=5913),
    Store(brand_id=1615, branch_id=1294),
]
CTX = PlanContext(business_id=398, max_ids=7, all_stores=tuple(STORES), provider_ids=(1, 6))
#: What klikit shows before any change: every entity visible on klikit (1) and GrabFood (6).
STARTING_MAP = {"1": True, "6": True}


def ctx_for(pending: list[PendingRow], base: PlanContext = CTX) -> PlanContext:
    """``base`` with klikit's current map (``STARTING_MAP``) read for every visibility scope of ``pending``."""
    shown = {VisibilityScope.of(r.target): dict(STARTING_MAP) for r in pending if r.target.field == "visibilities"}
    return PlanContext(
        business_id=base.business_id,
        max_ids=base.max_ids,
        all_stores=base.all_stores,
        provider_ids=base.provider_ids,
        visibility_shown=shown,
    )


scopes = st.sampled_from([None, *STORES])
enable_levels = st.sampled_from(["section", "category", "item", "modifier"])
vis_levels = st.sampled_from(["section", "category", "item", "modifier_group", "modifier"])
providers = st.sampled_from([1, 6, 9])
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
        provider = None
        if kind == "enabled":
            level, value = draw(enable_levels), draw(st.booleans())
        elif kind == "visibilities":
            level, value, provider = draw(vis_levels), draw(st.booleans()), draw(providers)
        else:
            level, value = "section", draw(schedules)
        entity = draw(st.integers(min_value=1, max_value=25))
        if level == "modifier":
            entity += 1000  # modifiers are items in klikit: one id space, so no shared ids
        target = Target(
            business_id=398,
            store=scope,
            level=level,  # type: ignore[arg-type]
            entity_id=entity,
            field=kind,  # type: ignore[arg-type]
            provider=provider,
        )
        out[target.key()] = PendingRow(
            target=target, value=value, version=make_version(1_000 + i, i), change_id=f"c{i}"
        )
    return list(out.values())


def _effect(calls: list) -> dict[str, object]:
    """What the calls set, per target key (business-level schedules expand to every store).

    A visibility call replaces the whole map: per provider of the test, visible iff the map says
    so (absent = hidden); the map itself under the scope's key with provider ``None``.
    """
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
                for provider in (1, 6, 9):
                    effect[t.model_copy(update={"provider": provider}).key()] = body["visibilities"].get(
                        str(provider), False
                    )
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
    calls = plan_calls(pending, ctx_for(pending))
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
        if row.target.field == "visibilities":
            # The channel is set, and every channel no row names keeps what klikit showed.
            assert effect[row.target.key()] == row.value
            whole = effect[row.target.model_copy(update={"provider": None}).key()]
            named = {
                str(r.target.provider)
                for r in pending
                if r.target.field == "visibilities" and VisibilityScope.of(r.target) == VisibilityScope.of(row.target)
            }
            assert {p: v for p, v in whole.items() if p not in named} == {  # type: ignore[union-attr]
                p: v for p, v in STARTING_MAP.items() if p not in named
            }
            continue
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
    calls = plan_calls(pending, ctx_for(pending))
    # One visibility call per (entity, scope) at most: every channel change of it rides that call.
    visibility_scopes = {VisibilityScope.of(r.target) for r in pending if r.target.field == "visibilities"}
    visibility_calls = [c for c in calls if c.operation.startswith("set_")]
    assert len(visibility_calls) <= len(visibility_scopes)
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
    first, second = plan_calls(pending, ctx_for(pending)), plan_calls(list(reversed(pending)), ctx_for(pending))
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


# Visibility: per-channel targets, whole maps composed ------------------------------------------------


def _vis_row(provider: int, visible: bool, at: int, store: Store | None = STORES[0], entity: int = 101) -> PendingRow:
    target = Target(
        business_id=398, store=store, level="item", entity_id=entity, field="visibilities", provider=provider
    )
    return PendingRow(target=target, value=visible, version=make_version(at, at), change_id=f"v{provider}-{at}")


@st.composite
def channel_histories(draw: st.DrawFn) -> tuple[dict[str, bool], list[ChannelValue]]:
    """klikit's starting map over a few providers, and changes to them in a random delivery order."""
    starting = draw(st.dictionaries(st.sampled_from(["1", "6", "9", "11"]), st.booleans(), max_size=4))
    n = draw(st.integers(min_value=0, max_value=12))
    times = draw(st.lists(st.integers(min_value=1, max_value=10_000), min_size=n, max_size=n, unique=True))
    changes = [
        ChannelValue(draw(st.sampled_from([1, 6, 9, 11])), draw(st.booleans()), make_version(t, i))
        for i, t in enumerate(times)
    ]
    return starting, draw(st.permutations(changes))


@settings(max_examples=300, deadline=None)
@given(channel_histories())
def test_composed_map_is_the_newest_value_per_provider_on_top_of_klikits_map(
    history: tuple[dict[str, bool], list[ChannelValue]],
) -> None:
    starting, delivered = history
    composed = compose_visibility_map(starting, delivered)
    newest: dict[int, ChannelValue] = {}
    for change in sorted(delivered, key=lambda c: c.version):
        newest[change.provider] = change
    expected = dict(starting)
    for provider, change in newest.items():
        expected[str(provider)] = change.visible
    assert composed == expected
    assert list(composed) == sorted(composed, key=int)


def test_two_channels_of_one_item_at_one_store_ride_one_call_that_settles_both() -> None:
    pending = [_vis_row(6, False, 1), _vis_row(11, False, 2)]
    [call] = plan_calls(pending, ctx_for(pending))
    assert call.operation == "set_item_visibilities" and call.path_id == 101
    assert call.body == {
        "visibilities": {"1": True, "6": False, "11": False},
        "zoneStores": [{"brandID": 5297, "branchID": 1293}],
    }
    assert {key for key, _ in call.targets} == {r.target.key() for r in pending}


def test_settled_channels_come_from_the_ledger_and_pending_ones_win() -> None:
    pending = [_vis_row(11, False, 5)]
    scope = VisibilityScope.of(pending[0].target)
    settled = [ChannelValue(6, False, make_version(1, 1)), ChannelValue(11, True, make_version(2, 2))]
    ctx = PlanContext(
        business_id=398, visibility_shown={scope: {"1": True, "6": True}}, visibility_settled={scope: settled}
    )
    [call] = plan_calls(pending, ctx)
    assert call.body["visibilities"] == {"1": True, "6": False, "11": False}
    assert [key for key, _ in call.targets] == [pending[0].target.key()]  # settled ones are not re-settled


def test_a_scope_without_a_reading_of_klikits_map_is_not_planned() -> None:
    pending = [_vis_row(6, False, 1)]
    assert plan_calls(pending, PlanContext(business_id=398)) == []


def test_stores_with_equal_composed_maps_share_a_call_and_the_business_map_has_its_own() -> None:
    pending = [_vis_row(6, False, 1, STORES[0]), _vis_row(6, False, 2, STORES[1]), _vis_row(9, False, 3, None)]
    calls = plan_calls(pending, ctx_for(pending))
    assert sorted((c.body for c in calls), key=lambda b: "zoneStores" in b) == [
        {"visibilities": {"1": True, "6": True, "9": False}},
        {
            "visibilities": {"1": True, "6": False},
            "zoneStores": [{"brandID": 5297, "branchID": 1293}, {"brandID": 5297, "branchID": 5913}],
        },
    ]


def test_a_legacy_whole_map_row_sets_only_the_providers_it_names() -> None:
    legacy = Target(business_id=398, store=STORES[0], level="item", entity_id=101, field="visibilities")
    row = PendingRow(target=legacy, value={"6": False}, version=make_version(1, 1), change_id="old")
    [call] = plan_calls([row], ctx_for([row]))
    assert call.body["visibilities"] == {"1": True, "6": False}
    assert call.targets == ((legacy.key(), row.version),)


def test_target_keys_round_trip_and_non_visibility_keys_are_unchanged() -> None:
    channel = Target(business_id=398, store=STORES[0], level="item", entity_id=101, field="visibilities", provider=6)
    assert channel.key() == "398|5297:1293|item|101|visibilities|6"
    assert Target.from_key(channel.key()) == channel
    enabled = Target(business_id=398, store=None, level="item", entity_id=101, field="enabled")
    assert enabled.key() == "398|*|item|101|enabled"
    assert Target.from_key(enabled.key()) == enabled
    legacy = Target(business_id=398, store=None, level="item", entity_id=101, field="visibilities")
    assert Target.from_key(legacy.key()) == legacy


def test_a_published_entity_is_visible_on_a_channel_only_if_its_map_says_so() -> None:
    values = EntityValues(visibilities={"1": True, "6": False})
    assert [values.visible_on(p) for p in (1, 6, 11)] == [True, False, False]  # absent = hidden
    assert EntityValues().visible_on(1) is None  # no map read: unknown, not hidden
