"""Every client operation against the sandbox over loopback HTTP: the request klikit receives, and its effect."""

from __future__ import annotations

from typing import Any

import pytest
from klikit_support import BUSINESS, SECTION, STORES, find_entity, store_key

from klikit import (
    CreateCategoryRequest,
    CreateItemRequest,
    CreateSectionRequest,
    EnableUpdateRequest,
    KlikitClient,
    LinkModifiersRequest,
    ModifierAttachment,
    PublishRequest,
    ResourceNotFound,
    SyncRequest,
    SyncSection,
    UpdateVisibilityRequest,
    ZoneStore,
)

STORE = ZoneStore(brand_id=5297, branch_id=1293)
ENTITY_OF_LEVEL = {"section": SECTION, "category": 7001, "item": 101, "modifier_group": 8001, "modifier": 9001}


def last_call(sandbox: Any) -> dict[str, Any]:
    calls: list[dict[str, Any]] = sandbox.calls()
    return calls[-1]


@pytest.mark.parametrize("level", ["section", "category", "item"])
def test_enable_at_business_level(client: KlikitClient, sandbox: Any, level: str) -> None:
    entity = ENTITY_OF_LEVEL[level]
    resp = client.enable(level, EnableUpdateRequest(ids=[entity], is_enabled=False), idempotency_key=f"en-{level}")
    assert resp.status == 200
    assert resp.attempts == 1
    call = last_call(sandbox)
    assert call["request_id"] == resp.request_id
    assert call["idempotency_key"] == f"en-{level}"
    assert call["body"] == {"ids": [entity], "isEnabled": False}
    assert call["applied"] is True
    state = sandbox.state(BUSINESS)
    assert state["business"][level][str(entity)]["enabled"] is False
    assert all(not s["overrides"][level] for s in state["stores"].values())


def test_enable_per_store_leaves_the_business_row(client: KlikitClient, sandbox: Any) -> None:
    request = EnableUpdateRequest(ids=[101, 102], is_enabled=False, zone_stores=[STORE])
    client.enable("item", request, idempotency_key="en-store")
    state = sandbox.state(BUSINESS)
    assert state["business"]["item"]["101"]["enabled"] is True
    overrides = state["stores"][store_key((5297, 1293))]["overrides"]["item"]
    assert overrides["101"]["enabled"] is False
    assert overrides["102"]["enabled"] is False
    assert not state["stores"][store_key((5297, 5913))]["overrides"]["item"]


def test_enable_cascades_to_modifier_links(client: KlikitClient, sandbox: Any) -> None:
    group = 8001  # item 101 links modifier group 8001
    request = EnableUpdateRequest(ids=[101], is_enabled=False, is_cascade_to_modifier_groups=True)
    client.enable("item", request, idempotency_key="en-cascade")
    links = sandbox.state(BUSINESS)["links"][str(group)]
    assert links
    assert all(row["enabled"] is False for row in links.values())


@pytest.mark.parametrize("level", ["section", "category", "item", "modifier_group", "modifier"])
def test_set_visibilities_at_every_level(client: KlikitClient, sandbox: Any, level: str) -> None:
    entity = ENTITY_OF_LEVEL[level]
    client.set_visibilities(
        level, entity, UpdateVisibilityRequest(visibilities={"1": True, "9": True}), idempotency_key=f"vis-{level}"
    )
    call = last_call(sandbox)
    assert call["method"] == "PATCH"
    assert call["path"].endswith(f"/{entity}/visibilities")
    state = sandbox.state(BUSINESS)
    assert state["business"][level][str(entity)]["visibilities"] == {"1": True, "9": True}

    per_store = UpdateVisibilityRequest(visibilities={"1": False}, zone_stores=[STORE])
    client.set_visibilities(level, entity, per_store, idempotency_key=f"vis-store-{level}")
    state = sandbox.state(BUSINESS)
    assert state["business"][level][str(entity)]["visibilities"] == {"1": True, "9": True}
    assert state["stores"][store_key((5297, 1293))]["overrides"][level][str(entity)]["visibilities"] == {"1": False}


def test_sync_writes_the_store_schedule(client: KlikitClient, sandbox: Any) -> None:
    times = {str(d): {"slots": [{"startTime": 800, "endTime": 1030}]} for d in range(7)}
    request = SyncRequest(stores=[STORE], sections={SECTION: SyncSection(sequence=2, available_times=times)})
    resp = client.sync_menu_to_stores(request, idempotency_key="sync-1")
    assert resp.data == {"success": 1, "failed": 0}
    row = sandbox.state(BUSINESS)["stores"][store_key((5297, 1293))]["overrides"]["section"][str(SECTION)]
    assert row["availableTimes"]["3"]["slots"] == [{"startTime": 800, "endTime": 1030}]


def test_populate_is_first_time_only(client: KlikitClient, sandbox: Any) -> None:
    sandbox.add_store(BUSINESS, 5297, 7777)
    fresh, seeded = ZoneStore(brand_id=5297, branch_id=7777), STORE
    times = {"0": {"slots": [{"startTime": 900, "endTime": 1000}]}}
    request = SyncRequest(stores=[fresh, seeded], sections={SECTION: SyncSection(sequence=5, available_times=times)})
    client.populate_stores(request, idempotency_key="populate-1")
    stores = sandbox.state(BUSINESS)["stores"]
    assert stores["5297:7777"]["has_menu_rows"] is True
    assert stores["5297:7777"]["overrides"]["section"][str(SECTION)]["sequence"] == 5
    assert str(SECTION) not in stores[store_key((5297, 1293))]["overrides"]["section"]  # skipped silently


def test_reset_store_overrides_drops_store_edits(client: KlikitClient, sandbox: Any) -> None:
    client.enable("item", EnableUpdateRequest(ids=[101], is_enabled=False, zone_stores=[STORE]), idempotency_key="e1")
    assert sandbox.state(BUSINESS)["stores"][store_key((5297, 1293))]["overrides"]["item"]
    resp = client.reset_store_overrides({"business_id": 1, "note": "passthrough"}, idempotency_key="reset-1")
    assert resp.data["business_id"] == BUSINESS  # overwritten by the credential's business
    assert last_call(sandbox)["body"] == {"business_id": 1, "note": "passthrough"}
    assert not sandbox.state(BUSINESS)["stores"][store_key((5297, 1293))]["overrides"]["item"]


def test_publish_and_store_menu(client: KlikitClient, sandbox: Any) -> None:
    stores = [ZoneStore(brand_id=b, branch_id=r) for b, r in STORES]
    resp = client.publish_menu(PublishRequest(stores=stores, provider_ids=[1, 6]), idempotency_key="pub-1")
    assert resp.data == {"success": 3, "failed": 0}
    published = sandbox.state(BUSINESS)["published"]
    assert set(published) == {store_key(s) for s in STORES}
    assert published[store_key((5297, 1293))]["provider_ids"] == [1, 6]
    menu = client.get_menu(5297, 1293).data["menu"]
    assert menu["branchInfo"]["branchID"] == 1293
    assert menu["branchInfo"]["brandID"] == 5297
    assert find_entity(menu["sections"], 101) is not None


def test_get_menu_business_mode_and_unknown_store(client: KlikitClient) -> None:
    menu = client.get_menu().data["menu"]
    assert menu["businessInfo"]["businessID"] == BUSINESS
    assert [s["id"] for s in menu["sections"]][:1] == [SECTION]
    assert "linkedCategories" in menu["sections"][0]
    with pytest.raises(ResourceNotFound) as info:
        client.get_menu(5297, 999_999)
    assert info.value.status == 404


def test_create_section_category_item_and_link_a_modifier(client: KlikitClient, sandbox: Any) -> None:
    section = client.create_section(
        CreateSectionRequest(title={"en": "Late night"}, visibilities={"1": True}, from_api=True),
        idempotency_key="cs-1",
    )
    assert section.status == 201
    section_id = section.data["id"]
    category_id = client.create_category(
        CreateCategoryRequest(title={"en": "Snacks"}, visibilities={"1": True}, is_halal=True), idempotency_key="cc-1"
    ).data["id"]
    item_id = client.create_item(
        CreateItemRequest(
            title={"en": "Fries"},
            vat=11,
            visibilities={"1": True, "6": True},
            prices={"1": {"IDR": {"price": 25000, "takeAwayPrice": 25000}}},
            sku="FRIES-01",
            prep_time=5,
        ),
        idempotency_key="ci-1",
    ).data["id"]
    modifier_id = client.create_item(
        {
            "title": {"en": "Extra cheese"},
            "vat": 0,
            "visibilities": {"1": True},
            "prices": {"1": {"IDR": {"price": 5000, "takeAwayPrice": 5000}}},
            "onlyModifier": True,
        },
        idempotency_key="cm-1",
    ).data["id"]
    assert len({section_id, category_id, item_id, modifier_id}) == 4
    state = sandbox.state(BUSINESS)["business"]
    assert str(section_id) in state["section"]
    assert str(category_id) in state["category"]
    assert str(item_id) in state["item"]
    assert str(modifier_id) in state["modifier"]

    link = LinkModifiersRequest(modifier_group_id=8001, attach=[ModifierAttachment(id=modifier_id, sequence=9)])
    client.link_modifiers_to_group(link, idempotency_key="link-1")
    assert sandbox.state(BUSINESS)["links"]["8001"][str(modifier_id)]["sequence"] == 9


def test_directory(client: KlikitClient) -> None:
    providers = client.list_providers().data
    assert {"id": 1, "name": "klikit", "display_name": "klikit"} in providers
    brands = client.list_brands().data
    assert {b["id"] for b in brands[0]["brands"]} == {5297, 1615}
    branches = client.list_branches().data
    assert branches["total"] == 3
    assert {b["id"] for b in branches["results"]} == {1293, 5913, 1294}
    assert client.list_stores() == sorted(STORES)


def test_list_stores_follows_pages(client: KlikitClient, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(5):
        sandbox.add_store(BUSINESS, 1615, 8000 + n)
    original = client.list_branches
    pages: list[int] = []

    def small_pages(page: int = 1, size: int = 1000) -> Any:
        pages.append(page)
        return original(page=page, size=3)

    monkeypatch.setattr(client, "list_branches", small_pages)
    stores = client.list_stores()
    assert pages == [1, 2, 3]
    assert stores == sorted([*STORES, *((1615, 8000 + n) for n in range(5))])


def test_reads_send_no_idempotency_key(client: KlikitClient, sandbox: Any) -> None:
    client.send("list_brands", idempotency_key="ignored")
    assert last_call(sandbox)["idempotency_key"] is None
