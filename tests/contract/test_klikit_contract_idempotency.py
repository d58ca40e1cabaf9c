"""Idempotent replay, the 409 conflict, the persist list of sync, and publish rebuilding the store cache."""

from __future__ import annotations

from typing import Any

import pytest
from klikit_support import BUSINESS, SECTION, find_entity, store_key

from klikit import (
    EnableUpdateRequest,
    IdempotencyConflict,
    KlikitClient,
    PublishRequest,
    SyncRequest,
    SyncSection,
    UpdateVisibilityRequest,
    ZoneStore,
)

STORE = ZoneStore(brand_id=5297, branch_id=1293)
OTHER = ZoneStore(brand_id=5297, branch_id=5913)


def item_enabled(sandbox: Any, item: int = 101) -> bool:
    enabled: bool = sandbox.state(BUSINESS)["business"]["item"][str(item)]["enabled"]
    return enabled


def test_same_key_same_body_is_replayed_not_reapplied(client: KlikitClient, sandbox: Any) -> None:
    disable = EnableUpdateRequest(ids=[101], is_enabled=False)
    enable = EnableUpdateRequest(ids=[101], is_enabled=True)
    first = client.enable("item", disable, idempotency_key="k-disable")
    client.enable("item", enable, idempotency_key="k-enable")
    assert item_enabled(sandbox) is True
    again = client.enable("item", disable, idempotency_key="k-disable")  # e.g. a redelivered message
    assert again.data == first.data
    assert item_enabled(sandbox) is True  # the replay did not write
    calls = sandbox.calls()
    assert [(c["idempotency_key"], c["applied"], c["replayed"]) for c in calls] == [
        ("k-disable", True, False),
        ("k-enable", True, False),
        ("k-disable", False, True),
    ]


def test_disable_enable_disable_with_fresh_keys_applies_all_three(client: KlikitClient, sandbox: Any) -> None:
    for n, flag in enumerate([False, True, False]):
        client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=flag), idempotency_key=f"k-{n}")
        assert item_enabled(sandbox) is flag
    assert [c["applied"] for c in sandbox.calls()] == [True, True, True]


def test_same_key_different_body_is_a_409_conflict_never_retried(client: KlikitClient, sandbox: Any) -> None:
    client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="k-shared")
    with pytest.raises(IdempotencyConflict) as info:
        client.enable("item", EnableUpdateRequest(ids=[102], is_enabled=False), idempotency_key="k-shared")
    err = info.value
    assert (err.status, err.code, err.attempts) == (409, "state_idempotency_conflict", 1)
    assert err.request_id == sandbox.calls()[-1]["request_id"]
    assert item_enabled(sandbox, 102) is True


def test_same_key_on_another_operation_is_a_conflict(client: KlikitClient) -> None:
    client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="k-op")
    with pytest.raises(IdempotencyConflict):
        client.enable("category", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="k-op")


def test_a_failed_attempt_does_not_consume_its_key(client: KlikitClient, sandbox: Any) -> None:
    sandbox.script("PATCH", "/v1/partner/menus/items/enable", [{"status": 502, "code": "downstream_unavailable"}])
    resp = client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="k-retry")
    assert resp.attempts == 2
    assert item_enabled(sandbox) is False
    assert [(c["status"], c["applied"]) for c in sandbox.calls()] == [(502, False), (200, True)]


def test_sync_keeps_persisted_store_overrides_unless_included(client: KlikitClient, sandbox: Any) -> None:
    # the store hides the section on klikit; the business changes its map
    client.set_visibilities(
        "section",
        SECTION,
        UpdateVisibilityRequest(visibilities={"1": False}, zone_stores=[STORE]),
        idempotency_key="v1",
    )
    client.set_visibilities(
        "section", SECTION, UpdateVisibilityRequest(visibilities={"1": True, "9": True}), idempotency_key="v2"
    )
    sections = {SECTION: SyncSection(sequence=1)}
    client.sync_menu_to_stores(SyncRequest(stores=[STORE, OTHER], sections=sections), idempotency_key="s1")
    overrides = sandbox.state(BUSINESS)["stores"][store_key((5297, 1293))]["overrides"]["section"]
    assert overrides[str(SECTION)]["visibilities"] == {"1": False}  # on the persist list: kept

    forced = SyncRequest(stores=[STORE, OTHER], sections=sections, field_include_on_sync=["visibilities"])
    client.sync_menu_to_stores(forced, idempotency_key="s2")
    client.publish_menu(PublishRequest(stores=[STORE, OTHER], provider_ids=[1]), idempotency_key="p1")
    effective = sandbox.state(BUSINESS)["effective_published"]
    for store in ("5297:1293", "5297:5913"):
        assert effective[store]["section"][str(SECTION)]["visibilities"] == {"1": True, "9": True}


def test_store_menu_reads_the_published_cache(client: KlikitClient, sandbox: Any) -> None:
    publish = PublishRequest(stores=[STORE], provider_ids=[1])
    client.publish_menu(publish, idempotency_key="pub-1")
    before = find_entity(client.get_menu(5297, 1293).data["menu"]["sections"], 101)
    assert before is not None
    assert before["enabled"] is True

    client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False), idempotency_key="en-1")
    assert (find_entity(client.get_menu().data["menu"]["sections"], 101) or {})["enabled"] is False  # business: live
    cached = find_entity(client.get_menu(5297, 1293).data["menu"]["sections"], 101)
    assert cached is not None
    assert cached["enabled"] is True  # store: still the old snapshot

    client.publish_menu(publish, idempotency_key="pub-2")
    fresh = find_entity(client.get_menu(5297, 1293).data["menu"]["sections"], 101)
    assert fresh is not None
    assert fresh["enabled"] is False
    assert sandbox.state(BUSINESS)["published"]["5297:1293"]["publish_count"] == 2


def test_a_store_never_published_has_an_empty_menu(client: KlikitClient) -> None:
    assert client.get_menu(1615, 1294).data["menu"]["sections"] == []


def test_sync_accepts_a_schedule_that_does_not_overlap_the_kept_one(client: KlikitClient) -> None:
    morning = {"1": {"slots": [{"startTime": 800, "endTime": 1000}]}}
    afternoon = {"1": {"slots": [{"startTime": 1200, "endTime": 1400}]}}
    for key, times in (("sync-m", morning), ("sync-a", afternoon)):
        request = SyncRequest(stores=[STORE], sections={SECTION: SyncSection(sequence=1, available_times=times)})
        client.sync_menu_to_stores(request, idempotency_key=key)


def test_a_menu_read_into_a_snapshot_is_the_walk_of_the_menu_answer(client: KlikitClient) -> None:
    from klikit.menu_tree import parse_menu

    client.publish_menu(PublishRequest(stores=[STORE], provider_ids=[1]), idempotency_key="pub-read")
    for ids in ((5297, 1293), (None, None)):  # store mode (the published snapshot), business mode
        snapshot = client.read_menu(*ids)
        assert len(snapshot) > 0
        assert snapshot == parse_menu(client.get_menu(*ids).data)
