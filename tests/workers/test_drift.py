"""The pure drift comparison and the menu tree parser: what counts as drift, override, absent."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klikit.menu_tree import EntityValues, MenuSnapshot, decode_menu_answer, parse_menu
from workers.drift import ABSENT, DRIFT, STORE_OVERRIDE, find_drift
from workers.ledger import TargetState

V = "000000000001000.000000000001"
S1, S2 = "5297:1293", "5297:5913"


def _state(value: Any, *, applied: str | None = V, pending: bool = False, dead: bool = False) -> TargetState:
    return TargetState(value=value, version=V, applied_version=applied, pending=pending, dead=dead)


def _menu(**items: bool) -> MenuSnapshot:
    return MenuSnapshot({("item", int(i)): EntityValues(enabled=flag) for i, flag in items.items()})


def _key(entity: int, store: str | None = None, field: str = "enabled") -> str:
    return f"398|{store or '*'}|item|{entity}|{field}"


def test_a_store_target_that_klikit_shows_otherwise_is_drift() -> None:
    report = find_drift({_key(101, S1): _state(False)}, {S1: _menu(**{"101": True})})
    assert [(f.target, f.kind, f.published) for f in report.findings] == [(_key(101, S1), DRIFT, {S1: True})]
    assert report.matched == []


def test_a_matching_target_is_matched_and_unread_stores_are_not_judged() -> None:
    states = {_key(101, S1): _state(False), _key(102, S2): _state(True)}
    report = find_drift(states, {S1: _menu(**{"101": False})})
    assert report.matched == [_key(101, S1)]
    assert report.findings == []


def test_pending_dead_and_unapplied_targets_are_skipped() -> None:
    states = {
        _key(101, S1): _state(False, pending=True),
        _key(102, S1): _state(False, dead=True),
        _key(103, S1): _state(False, applied=None),
    }
    report = find_drift(states, {S1: _menu(**{"101": True, "102": True, "103": True})})
    assert report.findings == [] and report.matched == []


def test_a_business_target_contradicted_at_some_stores_only_is_a_store_override() -> None:
    report = find_drift({_key(101): _state(False)}, {S1: _menu(**{"101": True}), S2: _menu(**{"101": False})})
    assert [(f.kind, f.published) for f in report.findings] == [(STORE_OVERRIDE, {S1: True, S2: False})]


def test_a_business_target_contradicted_at_every_store_is_drift() -> None:
    report = find_drift({_key(101): _state(False)}, {S1: _menu(**{"101": True}), S2: _menu(**{"101": True})})
    assert [f.kind for f in report.findings] == [DRIFT]


def test_a_store_target_governs_its_store_for_the_business_target() -> None:
    states = {_key(101): _state(False), _key(101, S1): _state(True)}
    report = find_drift(states, {S1: _menu(**{"101": True}), S2: _menu(**{"101": False})})
    assert report.findings == []
    assert sorted(report.matched) == sorted([_key(101), _key(101, S1)])


def test_an_entity_missing_from_the_menu_is_absent() -> None:
    report = find_drift({_key(999, S1): _state(False)}, {S1: _menu(**{"101": True})})
    assert [f.kind for f in report.findings] == [ABSENT]


@given(
    desired=st.dictionaries(st.integers(1, 6), st.booleans(), min_size=1),
    shown=st.dictionaries(st.integers(1, 6), st.booleans()),
)
def test_store_targets_drift_exactly_where_the_menu_differs(desired: dict[int, bool], shown: dict[int, bool]) -> None:
    states = {_key(i, S1): _state(v) for i, v in desired.items()}
    report = find_drift(states, {S1: _menu(**{str(i): v for i, v in shown.items()})})
    kinds = {f.target: f.kind for f in report.findings}
    for i, value in desired.items():
        if i not in shown:
            assert kinds[_key(i, S1)] == ABSENT
        elif shown[i] != value:
            assert kinds[_key(i, S1)] == DRIFT
        else:
            assert _key(i, S1) in report.matched


def test_parse_menu_reads_every_level_in_store_and_business_mode() -> None:
    modifier = {"id": 9001, "enabled": False, "visibilities": {"1": True}}
    group = {"id": 8001, "enabled": True, "visibilities": {"6": False, "1": True}, "modifiers": [modifier]}
    item = {"id": 101, "enabled": True, "visibilities": {"1": True}, "modifierGroups": [group], "unknown": 1}
    category = {"id": 201, "enabled": True, "visibilities": {}, "items": [item]}
    times = {"1": {"disabled": False, "slots": [{"startTime": 1100, "endTime": 1500, "extra": 0}]}}
    section = {"id": 6826, "enabled": True, "visibilities": {"1": True}, "availableTimes": times}
    store = parse_menu({"menu": {"sections": [{**section, "categories": [category]}]}})
    business = parse_menu({"menu": {"sections": [{**section, "linkedCategories": [category]}]}})
    for menu in (store, business):
        assert len(menu) == 5
        assert menu.values("modifier", 9001) == EntityValues(enabled=False, visibilities={"1": True})
        assert menu.values("modifier_group", 8001).visibilities == {"1": True, "6": False}  # type: ignore[union-attr]
        assert menu.values("section", 6826).available_times == {  # type: ignore[union-attr]
            "1": {"disabled": False, "slots": [{"startTime": 1100, "endTime": 1500}]}
        }


def test_a_repeated_entity_keeps_its_first_reading_and_its_later_children_are_still_read() -> None:
    first = {"id": 8001, "enabled": True, "modifiers": [{"id": 9001, "enabled": True}]}
    # The same group again, read otherwise and carrying a modifier seen nowhere else.
    again = {
        "id": 8001,
        "enabled": False,
        "modifiers": [{"id": 9001, "enabled": False}, {"id": 9002, "enabled": False}],
    }
    items = [{"id": 101, "modifierGroups": [first]}, {"id": 102, "modifierGroups": [again]}]
    menu = parse_menu({"menu": {"sections": [{"id": 1, "categories": [{"id": 201, "items": items}]}]}})
    assert menu.values("modifier_group", 8001) == EntityValues(enabled=True)
    assert menu.values("modifier", 9001) == EntityValues(enabled=True)
    assert menu.values("modifier", 9002) == EntityValues(enabled=False)
    assert len(menu) == 7


def test_a_channel_target_reads_its_one_channel_and_absent_means_hidden() -> None:
    hide_6 = "398|5297:1293|item|101|visibilities|6"
    show_1 = "398|5297:1293|item|101|visibilities|1"
    show_9 = "398|5297:1293|item|101|visibilities|9"
    menu = MenuSnapshot({("item", 101): EntityValues(enabled=True, visibilities={"1": True, "6": True})})
    states = {hide_6: _state(False), show_1: _state(True), show_9: _state(True)}
    report = find_drift(states, {S1: menu})
    kinds = {f.target: (f.kind, f.published) for f in report.findings}
    assert kinds == {hide_6: (DRIFT, {S1: True}), show_9: (DRIFT, {S1: False})}  # 9 is absent: hidden
    assert report.matched == [show_1]


_ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3))
_VISIBILITIES = st.one_of(_ODD, st.dictionaries(st.sampled_from(["1", "6", "06", "x", "-1"]), _ODD, max_size=3))
_TIMES = st.one_of(
    _ODD,
    st.dictionaries(
        st.sampled_from(["0", "3", "9"]),
        st.one_of(
            _ODD,
            st.fixed_dictionaries(
                {
                    "disabled": _ODD,
                    "slots": st.lists(
                        st.one_of(_ODD, st.fixed_dictionaries({"startTime": _ODD, "endTime": _ODD})), max_size=2
                    ),
                }
            ),
        ),
        max_size=2,
    ),
)
_ID = st.one_of(st.integers(1, 6), st.booleans(), st.none(), st.text(max_size=1))


def _entity(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    fields = {"id": _ID, "enabled": _ODD, "visibilities": _VISIBILITIES, "availableTimes": _TIMES, "title": _ODD}
    kids = {name: children for name in ("categories", "linkedCategories", "items", "modifierGroups", "modifiers")}
    return st.fixed_dictionaries({}, optional={**fields, **kids})


_TREE = st.recursive(_entity(st.just([])), lambda inner: _entity(st.lists(inner, max_size=3)), max_leaves=8)
#: Child lists that may hold a stray value (only the walk takes those).
_MESSY_TREE = st.recursive(
    _entity(st.just([])), lambda inner: _entity(st.lists(st.one_of(inner, _ODD), max_size=3)), max_leaves=8
)
#: Menu trees are large draws; a loaded machine must not fail the run on how long drawing took.
_TREE_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _answer(sections: Any) -> bytes:
    return json.dumps({"request_id": "req-1", "data": {"menu": {"sections": sections}}}).encode()


@_TREE_SETTINGS
@given(st.lists(_TREE, max_size=3))
def test_the_typed_menu_decoding_reads_what_the_walk_reads(sections: list[Any]) -> None:
    content = _answer(sections)
    fast = decode_menu_answer(content)
    assert fast is not None
    assert fast == (parse_menu(json.loads(content)["data"]), "req-1")


@_TREE_SETTINGS
@given(st.one_of(st.lists(st.one_of(_MESSY_TREE, _ODD), max_size=3), _ODD))
def test_an_answer_the_typed_decoding_takes_is_read_as_the_walk_reads_it(sections: Any) -> None:
    content = _answer(sections)
    fast = decode_menu_answer(content)
    if fast is not None:  # else the client decodes it the general way and walks it
        assert fast[0] == parse_menu(json.loads(content)["data"])


def test_a_menu_of_the_usual_shape_is_decoded_typed() -> None:
    group = {"id": 8001, "enabled": True, "visibilities": {"1": True}, "modifiers": [{"id": 9001, "enabled": False}]}
    item = {"id": 101, "enabled": True, "title": {"en": "x"}, "prices": {}, "modifierGroups": [group, group]}
    times = {"1": {"disabled": False, "slots": [{"startTime": 1100, "endTime": 1500}]}}
    section = {"id": 6826, "enabled": True, "availableTimes": times, "categories": [{"id": 201, "items": [item]}]}
    data = {"menu": {"branchInfo": {"brandID": 1}, "sections": [section]}}
    fast = decode_menu_answer(json.dumps({"data": data}).encode())
    assert fast is not None and fast[1] is None
    assert fast[0] == parse_menu(data) and len(fast[0]) == 5
    assert decode_menu_answer(b'{"data": {"menu": {"sections": [1]}}}') is None  # a non-object child: the walk decides
    assert decode_menu_answer(b"not json") is None
