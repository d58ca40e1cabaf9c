"""Visibility is per channel, end to end: "hide it on GrabFood" hides it on GrabFood only.

Real Redis, real Dramatiq workers, the klikit sandbox over HTTP. klikit replaces an entity's whole
visibility map on every write and hides the providers the map leaves out; these tests read the
*published* menus (``effective_published``), never the maps menusync sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline_support import BUSINESS, STORES, Pipeline, wait_for

from workers.changes import CanonicalChange, Change, Store, Target

ITEM = 101
GET_MENU = "/v1/partner/menus"


def channel(provider: int, visible: bool, at_ms: int, store: Store | None = STORES[0], entity: int = ITEM) -> Change:
    target = Target(
        business_id=BUSINESS, store=store, level="item", entity_id=entity, field="visibilities", provider=provider
    )
    return Change(id=f"vis-{provider}-{at_ms}", target=target, value=visible, occurred_at_ms=at_ms)


def publish(p: Pipeline, stores: tuple[Store, ...] = STORES) -> None:
    """Publish the stores, as a restaurant live on klikit has been: store-mode getMenu then shows them."""
    body = {"stores": [{"brandID": s.brand_id, "branchID": s.branch_id} for s in stores], "providerIDs": [1, 6]}
    with p.sandbox.client(BUSINESS) as http:
        response = http.post("/v1/partner/menus/publish", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 200, response.text


def published_map(p: Pipeline, store: Store, entity: int = ITEM, level: str = "item") -> dict[str, Any]:
    return dict(p.sandbox.state(BUSINESS)["effective_published"][store.key()][level][str(entity)]["visibilities"])


def visible(published: dict[str, Any], provider: int) -> bool:
    """klikit's reading of a map: a provider absent from it is hidden."""
    return bool(published.get(str(provider), False))


def visibility_writes(p: Pipeline, entity: int = ITEM) -> list[dict[str, Any]]:
    return [c for c in p.writes() if c["path"] == f"/v1/partner/menus/items/{entity}/visibilities"]


def test_hide_on_6_then_on_11_hides_both_and_keeps_klikit_visible(pipeline: Pipeline) -> None:
    publish(pipeline)
    base = 1_795_100_000_000
    pipeline.submit([channel(6, False, base)])
    wait_for(lambda: pipeline.rt.ledger.pending_count(BUSINESS) == 0, what="hide on 6 applied")
    pipeline.submit([channel(11, False, base + 1_000)])
    pipeline.wait_settled()
    published = published_map(pipeline, STORES[0])
    assert not visible(published, 6) and not visible(published, 11)
    assert visible(published, 1)
    # The other stores were not touched.
    assert published_map(pipeline, STORES[1]) == {"1": True, "6": True}


def test_the_same_two_changes_delivered_in_reverse_order_give_the_same_menu(pipeline: Pipeline) -> None:
    publish(pipeline)
    base = 1_795_100_100_000
    pipeline.submit([channel(11, False, base + 1_000)])  # the newer change arrives first
    pipeline.wait_settled()
    result = pipeline.submit([channel(6, False, base)])
    assert result.accepted == 1, "an older change to another channel is not superseded"
    pipeline.wait_settled()
    published = published_map(pipeline, STORES[0])
    assert not visible(published, 6) and not visible(published, 11)
    assert visible(published, 1)


def test_both_channels_in_one_burst_ride_one_write(pipeline: Pipeline) -> None:
    publish(pipeline)
    base = 1_795_100_150_000
    pipeline.submit([channel(11, False, base + 1), channel(6, False, base)])
    pipeline.wait_settled()
    [write] = visibility_writes(pipeline)
    assert write["body"]["visibilities"] == {"1": True, "6": False, "11": False}
    published = published_map(pipeline, STORES[0])
    assert visible(published, 1) and not visible(published, 6) and not visible(published, 11)


def test_a_business_level_hide_on_9_keeps_klikit_visible_everywhere_and_a_store_map_intact(
    pipeline: Pipeline,
) -> None:
    publish(pipeline)
    base = 1_795_100_200_000
    pipeline.submit([channel(6, False, base, store=STORES[0])])
    pipeline.wait_settled()
    pipeline.submit([channel(9, False, base + 1_000, store=None)])
    pipeline.wait_settled()
    state = pipeline.sandbox.state(BUSINESS)
    assert state["business"]["item"][str(ITEM)]["visibilities"] == {"1": True, "6": True, "9": False}
    for store in STORES:
        published = published_map(pipeline, store)
        assert visible(published, 1), store
        assert not visible(published, 9), store
    # The store-level map set for GrabFood stays as it was.
    assert not visible(published_map(pipeline, STORES[0]), 6)
    assert visible(published_map(pipeline, STORES[1]), 6)


def test_replace_hides_every_provider_it_does_not_name(pipeline: Pipeline) -> None:
    publish(pipeline)
    known = pipeline.rt.providers(BUSINESS)
    change = CanonicalChange.model_validate(
        {
            "id": "replace-1",
            "kind": "visibility",
            "level": "item",
            "entity_ids": [ITEM],
            "visibilities": {"1": True},
            "replace": True,
            "stores": [{"brand_id": STORES[0].brand_id, "branch_id": STORES[0].branch_id}],
            "occurred_at": "2026-11-22T10:00:00Z",
        }
    )
    changes = change.expand(BUSINESS, known)
    assert {c.target.provider for c in changes} == set(known.ids)
    since = pipeline.sandbox.calls()[-1]["seq"]
    pipeline.submit(changes)
    pipeline.wait_settled()
    published = published_map(pipeline, STORES[0])
    assert visible(published, 1)
    assert [p for p in known.ids if p != 1 and visible(published, p)] == []
    assert not visible(published, 6), "GrabFood was visible before the replace"
    # menusync held every listed provider: it had nothing to read before writing.
    assert [c for c in pipeline.sandbox.calls(since=since) if c["path"] == GET_MENU] == []


def test_a_menu_read_that_fails_transiently_defers_the_write_and_no_guessed_map_is_sent(
    make_pipeline: Any,
) -> None:
    p: Pipeline = make_pipeline(klikit_incall_attempts=1)
    publish(p)
    failures = [{"status": 502, "code": "downstream_unavailable"}] * 3
    p.sandbox.script("GET", GET_MENU, failures, business_id=BUSINESS)
    p.submit([channel(6, False, 1_795_100_300_000)])
    p.wait_settled()
    calls = p.sandbox.calls(business_id=BUSINESS)
    reads = [c for c in calls if c["path"] == GET_MENU]
    assert [c["status"] for c in reads[:3]] == [502, 502, 502]
    writes = visibility_writes(p)
    assert writes, "the write went once the read succeeded"
    first_good_read = next(c["seq"] for c in reads if c["status"] == 200)
    assert all(w["seq"] > first_good_read for w in writes), "a write went before klikit's map was known"
    assert {str(w["body"]["visibilities"]) for w in writes} == {str({"1": True, "6": False})}
    assert visible(published_map(p, STORES[0]), 1)
    assert p.rt.dead_letters.count() == 0


def test_a_store_never_published_is_composed_on_the_business_map_it_inherits(pipeline: Pipeline) -> None:
    # Never published: store-mode getMenu shows nothing there; the store's rows are the business rows.
    pipeline.submit([channel(6, False, 1_795_100_400_000)])
    pipeline.wait_settled()
    [write] = visibility_writes(pipeline)
    assert write["body"]["visibilities"] == {"1": True, "6": False}
    reads = [c for c in pipeline.sandbox.calls(business_id=BUSINESS) if c["path"] == GET_MENU]
    assert [("brand_id" in c["query"]) for c in reads[:2]] == [True, False], "store mode, then business mode"
    assert visible(published_map(pipeline, STORES[0]), 1) and not visible(published_map(pipeline, STORES[0]), 6)


def test_an_entity_never_in_the_menu_is_dead_lettered_after_the_retry_age_with_the_reason(
    make_pipeline: Any,
) -> None:
    p: Pipeline = make_pipeline(retry_max_age_s=1.0)
    publish(p)
    p.submit([channel(6, False, 1_795_100_500_000, entity=987_654)])
    wait_for(lambda: p.rt.dead_letters.count() == 1, what="a dead letter")
    p.wait_settled()
    [record] = p.rt.dead_letters.list()
    assert record.error_code == "visibility_entity_not_in_menu"
    assert "5297:1293" in record.reason and "item 987654" in record.reason
    assert visibility_writes(p, entity=987_654) == []


def test_a_channel_applied_but_not_yet_published_is_carried_from_the_ledger(make_pipeline: Any) -> None:
    # No publish during the test: store-mode getMenu keeps showing the menu as published at the start.
    p: Pipeline = make_pipeline(publish_quiet_ms=60_000, publish_max_wait_ms=120_000)
    publish(p)
    base = 1_795_100_600_000
    p.submit([channel(6, False, base)])
    wait_for(lambda: p.rt.ledger.pending_count(BUSINESS) == 0, what="hide on 6 applied")
    p.submit([channel(11, False, base + 1_000)])
    wait_for(lambda: p.rt.ledger.pending_count(BUSINESS) == 0, what="hide on 11 applied")
    assert published_map(p, STORES[0]) == {"1": True, "6": True}, "nothing was published meanwhile"
    first, second = visibility_writes(p)
    assert first["body"]["visibilities"] == {"1": True, "6": False}
    assert second["body"]["visibilities"] == {"1": True, "6": False, "11": False}
    override = p.sandbox.state(BUSINESS)["stores"][STORES[0].key()]["overrides"]["item"][str(ITEM)]
    assert override["visibilities"] == {"1": True, "6": False, "11": False}
