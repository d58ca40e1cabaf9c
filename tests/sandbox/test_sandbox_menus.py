"""Menu writes and reads: scopes of writes, sync and its persist list, populate, reset, publish, getMenu."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devstack.sandbox.testing import SandboxHandle

STORE = {"brandID": 5297, "branchID": 1293}
OTHER_STORE = {"brandID": 5297, "branchID": 5913}
FOREIGN_ITEM = 1 * 1_000_000 + 100_001  # first item of bench business 1001
FOREIGN_STORE = {"brandID": 1_900_001, "branchID": 1_950_001}


def _times(start: int, end: int, day: str = "1") -> dict[str, Any]:
    return {day: {"disabled": False, "slots": [{"startTime": start, "endTime": end}]}}


class Api:
    """Writes with fresh idempotency keys."""

    def __init__(self, client: httpx.Client, key: Callable[[], str]) -> None:
        self.client = client
        self.key = key

    def write(self, method: str, path: str, body: Any) -> httpx.Response:
        return self.client.request(method, "/v1/partner" + path, json=body, headers={"Idempotency-Key": self.key()})

    def sync(self, sections: dict[str, Any], include: list[str] | None = None, stores: Any = None) -> httpx.Response:
        body: dict[str, Any] = {"stores": stores or [STORE], "sections": sections}
        if include is not None:
            body["fieldIncludeOnSync"] = include
        return self.write("POST", "/menus/sync", body)

    def publish(self, stores: Any = None) -> httpx.Response:
        return self.write("POST", "/menus/publish", {"stores": stores or [STORE], "providerIDs": [1, 6]})

    def store_menu(self, store: dict[str, int] = STORE) -> list[dict[str, Any]]:
        r = self.client.get("/v1/partner/menus", params={"brand_id": store["brandID"], "branch_id": store["branchID"]})
        assert r.status_code == 200, r.text
        sections: list[dict[str, Any]] = r.json()["data"]["menu"]["sections"]
        return sections


@pytest.fixture
def api(client: httpx.Client, key: Callable[[], str]) -> Api:
    return Api(client, key)


def _item(sections: list[dict[str, Any]], item_id: int) -> dict[str, Any]:
    for section in sections:
        for category in section.get("categories", section.get("linkedCategories", [])):
            for item in category["items"]:
                if item["id"] == item_id:
                    return dict(item)
    raise AssertionError(f"item {item_id} not in menu")


def test_enable_per_store_leaves_business_row(sandbox: SandboxHandle, api: Api) -> None:
    assert api.write(
        "PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False, "zoneStores": [STORE]}
    ).is_success
    state = sandbox.state(398)
    assert state["business"]["item"]["101"]["enabled"] is True
    assert state["stores"]["5297:1293"]["overrides"]["item"]["101"] == {"enabled": False}
    assert state["stores"]["5297:5913"]["overrides"]["item"] == {}


@pytest.mark.parametrize(("path", "level", "entity"), [("sections", "section", 6825), ("categories", "category", 7001)])
def test_enable_sections_and_categories(sandbox: SandboxHandle, api: Api, path: str, level: str, entity: int) -> None:
    assert api.write("PATCH", f"/menus/{path}/enable", {"ids": [entity], "isEnabled": False}).is_success
    assert sandbox.state(398)["business"][level][str(entity)]["enabled"] is False


def test_enable_rejects_ids_of_another_level(api: Api) -> None:
    r = api.write("PATCH", "/menus/sections/enable", {"ids": [101], "isEnabled": False})
    assert r.status_code == 404


def test_cascade_flips_modifier_links(sandbox: SandboxHandle, api: Api) -> None:
    body = {"ids": [101], "isEnabled": False, "isCascadeToModifierGroups": True}
    assert api.write("PATCH", "/menus/items/enable", body).is_success
    links = sandbox.state(398)["links"]["8001"]
    assert all(not row["enabled"] for row in links.values())
    assert all(row["enabled"] for row in sandbox.state(398)["links"]["8002"].values())


@pytest.mark.parametrize(
    ("path", "level", "entity"),
    [
        ("sections", "section", 6825),
        ("categories", "category", 7001),
        ("items", "item", 101),
        ("modifier-groups", "modifier_group", 8001),
        ("modifiers", "modifier", 9001),
    ],
)
def test_visibilities_replace_the_map(sandbox: SandboxHandle, api: Api, path: str, level: str, entity: int) -> None:
    assert api.write("PATCH", f"/menus/{path}/{entity}/visibilities", {"visibilities": {"9": True}}).is_success
    assert sandbox.state(398)["business"][level][str(entity)]["visibilities"] == {"9": True}
    body = {"visibilities": {"1": False}, "zoneStores": [STORE]}
    assert api.write("PATCH", f"/menus/{path}/{entity}/visibilities", body).is_success
    state = sandbox.state(398)
    assert state["business"][level][str(entity)]["visibilities"] == {"9": True}
    assert state["stores"]["5297:1293"]["overrides"][level][str(entity)] == {"visibilities": {"1": False}}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/menus/items/enable", {"ids": [101, FOREIGN_ITEM], "isEnabled": False}),
        ("PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False, "zoneStores": [FOREIGN_STORE]}),
        ("PATCH", f"/menus/items/{FOREIGN_ITEM}/visibilities", {"visibilities": {"1": True}}),
        ("PATCH", "/menus/sections/1001001/visibilities", {"visibilities": {"1": True}}),
        ("POST", "/menus/publish", {"stores": [FOREIGN_STORE], "providerIDs": [1]}),
        ("POST", "/menus/sync", {"stores": [STORE], "sections": {"1001001": {"sequence": 1}}}),
    ],
)
def test_foreign_ids_and_stores_are_404(sandbox: SandboxHandle, api: Api, method: str, path: str, body: Any) -> None:
    r = api.write(method, path, body)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "resource_not_found"
    assert sandbox.state(398)["business"]["item"]["101"]["enabled"] is True
    r = api.client.get("/v1/partner/menus", params={"brand_id": 1_900_001, "branch_id": 1_950_001})
    assert r.status_code == 404


def test_bench_businesses_have_their_own_credentials(sandbox: SandboxHandle, key: Callable[[], str]) -> None:
    with sandbox.client(1001) as other:
        r = other.patch(
            "/v1/partner/menus/items/enable", json={"ids": [FOREIGN_ITEM]}, headers={"Idempotency-Key": key()}
        )
        assert r.status_code == 200
        r = other.patch("/v1/partner/menus/items/enable", json={"ids": [101]}, headers={"Idempotency-Key": key()})
        assert r.status_code == 404
    assert sandbox.state(1001)["business"]["item"][str(FOREIGN_ITEM)]["enabled"] is False
    assert sandbox.calls(business_id=1001)[0]["business_id"] == 1001


def test_store_menu_changes_only_after_publish(sandbox: SandboxHandle, api: Api) -> None:
    assert api.store_menu() == []
    assert api.publish().json()["data"] == {"success": 1, "failed": 0}
    assert _item(api.store_menu(), 101)["enabled"] is True
    api.write("PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False})
    api.write("PATCH", "/menus/items/102/visibilities", {"visibilities": {"1": False}, "zoneStores": [STORE]})
    api.sync({"6825": {"sequence": 3, "availableTimes": _times(800, 900)}})
    before = api.store_menu()
    assert _item(before, 101)["enabled"] is True
    assert sandbox.state(398)["effective_published"]["5297:1293"]["item"]["101"]["enabled"] is True
    api.publish()
    after = api.store_menu()
    assert _item(after, 101)["enabled"] is False and _item(after, 101)["sku"] == "SKU-00001"
    assert _item(after, 102)["visibilities"] == {"1": False}
    breakfast = next(s for s in after if s["id"] == 6825)
    assert breakfast["availableTimes"] == _times(800, 900) and breakfast["sequence"] == 3
    state = sandbox.state(398)
    assert state["published"]["5297:1293"]["publish_count"] == 2
    assert state["published"]["5297:1293"]["provider_ids"] == [1, 6]
    eff = state["effective_published"]["5297:1293"]
    assert eff["item"]["101"] == {"enabled": False, "visibilities": {"1": True, "6": True}}
    assert eff["section"]["6825"]["availableTimes"] == _times(800, 900)
    assert "5297:5913" not in state["effective_published"]


def test_business_mode_menu_is_live(api: Api) -> None:
    api.write("PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False})
    r = api.client.get("/v1/partner/menus")
    menu = r.json()["data"]["menu"]
    assert menu["businessInfo"]["businessID"] == 398
    assert _item(menu["sections"], 101)["enabled"] is False
    assert "linkedCategories" in menu["sections"][0] and "isAvailable" not in _item(menu["sections"], 101)


@pytest.mark.parametrize("params", [{"brand_id": 5297}, {"branch_id": 1293}, {"brand_id": "x", "branch_id": 1293}])
def test_get_menu_parameter_errors(client: httpx.Client, params: dict[str, Any]) -> None:
    r = client.get("/v1/partner/menus", params=params)
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_invalid"


def test_sync_keeps_persisted_store_overrides(sandbox: SandboxHandle, api: Api) -> None:
    api.write("PATCH", "/menus/sections/enable", {"ids": [6825], "isEnabled": False, "zoneStores": [STORE]})
    api.write("PATCH", "/menus/sections/6825/visibilities", {"visibilities": {"1": False}, "zoneStores": [STORE]})
    assert api.sync({"6825": {"sequence": 1, "availableTimes": {}}}).status_code == 200
    row = sandbox.state(398)["stores"]["5297:1293"]["overrides"]["section"]["6825"]
    assert row["enabled"] is False and row["visibilities"] == {"1": False}


def test_field_include_on_sync_overwrites_with_business_value(sandbox: SandboxHandle, api: Api) -> None:
    api.write("PATCH", "/menus/sections/enable", {"ids": [6825], "isEnabled": False, "zoneStores": [STORE]})
    api.write("PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False, "zoneStores": [STORE]})
    api.write("PATCH", "/menus/sections/6825/visibilities", {"visibilities": {"1": False}, "zoneStores": [STORE]})
    assert api.sync({"6825": {"sequence": 1, "availableTimes": {}}}, include=["isEnabled"]).status_code == 200
    overrides = sandbox.state(398)["stores"]["5297:1293"]["overrides"]
    assert "enabled" not in overrides["section"]["6825"]
    assert overrides["section"]["6825"]["visibilities"] == {"1": False}
    assert "101" not in overrides["item"]  # item 101 is under section 6825


def test_sync_schedule_against_kept_schedule(sandbox: SandboxHandle, api: Api) -> None:
    assert api.sync({"6825": {"sequence": 1, "availableTimes": _times(800, 1000)}}).status_code == 200
    # Same schedule again is fine; one whose slots overlap the kept one on a weekday collides.
    assert api.sync({"6825": {"sequence": 1, "availableTimes": _times(800, 1000)}}).status_code == 200
    r = api.sync({"6825": {"sequence": 1, "availableTimes": _times(900, 1100)}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_invalid"
    assert "sections.6825.availableTimes" in r.json()["error"]["message"]
    kept = sandbox.state(398)["stores"]["5297:1293"]["overrides"]["section"]["6825"]["availableTimes"]
    assert kept == _times(800, 1000)
    # Taking availableTimes off the persist list replaces it.
    r = api.sync({"6825": {"sequence": 1, "availableTimes": _times(1200, 1400, "2")}}, include=["availableTimes"])
    assert r.status_code == 200
    kept = sandbox.state(398)["stores"]["5297:1293"]["overrides"]["section"]["6825"]["availableTimes"]
    assert kept == _times(1200, 1400, "2")
    # {} with availableTimes included falls back to the business schedule.
    assert api.sync({"6825": {"sequence": 1, "availableTimes": {}}}, include=["availableTimes"]).status_code == 200
    assert "availableTimes" not in sandbox.state(398)["stores"]["5297:1293"]["overrides"]["section"]["6825"]


def test_sync_rejects_a_collision_in_any_store_before_writing(sandbox: SandboxHandle, api: Api) -> None:
    api.sync({"6825": {"sequence": 1, "availableTimes": _times(800, 1000)}}, stores=[OTHER_STORE])
    r = api.sync({"6825": {"sequence": 1, "availableTimes": _times(900, 1100)}}, stores=[STORE, OTHER_STORE])
    assert r.status_code == 400
    assert "availableTimes" not in sandbox.state(398)["stores"]["5297:1293"]["overrides"]["section"].get("6825", {})


@pytest.mark.parametrize(
    "times",
    [
        {"1": {"disabled": False, "slots": [{"startTime": 800, "endTime": 1000}, {"startTime": 930, "endTime": 1100}]}},
        {"1": {"disabled": False, "slots": [{"startTime": 1000, "endTime": 900}]}},
        {"1": {"disabled": False, "slots": [{"startTime": 860, "endTime": 900}]}},
        {"7": {"disabled": False, "slots": []}},
    ],
)
def test_sync_rejects_bad_schedules(api: Api, times: dict[str, Any]) -> None:
    r = api.sync({"6825": {"sequence": 1, "availableTimes": times}})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("sections.6825.availableTimes")


@pytest.mark.parametrize("section_key", ["²", "-1", "x", "1" * 40])
def test_sync_rejects_odd_section_keys(api: Api, section_key: str) -> None:
    r = api.sync({section_key: {"sequence": 1}})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == f"sections.{section_key}"


def test_odd_provider_keys_are_invalid(api: Api) -> None:
    r = api.write("PATCH", "/menus/items/101/visibilities", {"visibilities": {"²": True}})
    assert r.status_code == 400


def test_touching_slots_do_not_overlap(api: Api) -> None:
    times = {
        "1": {"disabled": False, "slots": [{"startTime": 800, "endTime": 1000}, {"startTime": 1000, "endTime": 1100}]}
    }
    assert api.sync({"6825": {"sequence": 1, "availableTimes": times}}).status_code == 200


def test_populate_skips_stores_with_menu_rows(sandbox: SandboxHandle, api: Api) -> None:
    sandbox.add_store(398, 5297, 7777)
    new_store = {"brandID": 5297, "branchID": 7777}
    sections = {"6825": {"sequence": 9, "availableTimes": _times(600, 700)}}
    r = api.write("POST", "/menus/populate", {"stores": [STORE, new_store], "sections": sections})
    assert r.status_code == 200
    stores = sandbox.state(398)["stores"]
    assert stores["5297:7777"]["has_menu_rows"] is True
    assert stores["5297:7777"]["overrides"]["section"]["6825"]["availableTimes"] == _times(600, 700)
    assert stores["5297:1293"]["overrides"]["section"] == {}
    other = {"6825": {"sequence": 1, "availableTimes": _times(1200, 1300)}}
    api.write("POST", "/menus/populate", {"stores": [new_store], "sections": other})
    kept = sandbox.state(398)["stores"]["5297:7777"]["overrides"]["section"]["6825"]["availableTimes"]
    assert kept == _times(600, 700)
    assert api.store_menu(new_store) == []
    r = api.client.get("/v1/partner/branches")
    assert r.json()["data"]["total"] == 4


def test_reset_drops_overrides(sandbox: SandboxHandle, api: Api) -> None:
    for store in (STORE, OTHER_STORE):
        api.write("PATCH", "/menus/items/enable", {"ids": [101], "isEnabled": False, "zoneStores": [store]})
    r = api.write("POST", "/menus/reset", {"business_id": 1, "stores": [STORE]})
    assert r.status_code == 200 and r.json()["data"]["business_id"] == 398
    stores = sandbox.state(398)["stores"]
    assert stores["5297:1293"]["overrides"]["item"] == {}
    assert stores["5297:5913"]["overrides"]["item"] == {"101": {"enabled": False}}
    assert api.write("POST", "/menus/reset", {}).status_code == 200
    assert sandbox.state(398)["stores"]["5297:5913"]["overrides"]["item"] == {}


def test_publish_validation(api: Api) -> None:
    r = api.write("POST", "/menus/publish", {"stores": [STORE]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "providerIDs"
    r = api.write("POST", "/menus/publish", {"stores": [], "providerIDs": [1]})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "stores"
    r = api.write("POST", "/menus/publish", {"stores": [STORE], "providerIDs": [1], "scheduledAt": "soon"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "scheduledAt"
    body = {"stores": [STORE], "providerIDs": [1], "scheduledAt": "2026-11-22T10:00:00Z"}
    assert api.write("POST", "/menus/publish", body).status_code == 200


def test_create_item_and_link_modifier(sandbox: SandboxHandle, api: Api) -> None:
    base = {"title": {"en": "Kopi"}, "vat": 11, "visibilities": {"1": True}}
    price = {"1": {"IDR": {"price": 18000, "takeAwayPrice": 18000}}}
    r = api.write("POST", "/menus/items", {**base, "prices": price, "sku": "KOPI-1", "categoryID": 7001})
    assert r.status_code == 201
    item_id = r.json()["data"]["id"]
    assert _item(api.client.get("/v1/partner/menus").json()["data"]["menu"]["sections"], item_id)["sku"] == "KOPI-1"
    r = api.write("POST", "/menus/items", {**base, "prices": price, "onlyModifier": True})
    modifier_id = r.json()["data"]["id"]
    body = {"modifierGroupID": 8001, "attach": [{"id": modifier_id, "sequence": 1}], "deleteModifierIDs": [9001]}
    assert api.write("POST", "/menus/modifier-groups/modifiers", body).status_code == 200
    links = sandbox.state(398)["links"]["8001"]
    assert str(modifier_id) in links and "9001" not in links
    assert sandbox.state(398)["business"]["modifier"][str(modifier_id)]["enabled"] is True


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"title": None}, "title"),
        ({"vat": -1}, "vat"),
        ({"prices": {"6": {"IDR": {"price": 1, "takeAwayPrice": 1}}}}, "prices.1"),
        ({"sku": "S" * 51}, "sku"),
        ({"visibilities": {"1": "yes"}}, "visibilities.1"),
    ],
)
def test_create_item_validation(api: Api, patch: dict[str, Any], field: str) -> None:
    body = {
        "title": {"en": "Kopi"},
        "vat": 0,
        "visibilities": {"1": True},
        "prices": {"1": {"IDR": {"price": 1, "takeAwayPrice": 1}}},
    }
    r = api.write("POST", "/menus/items", {**body, **patch})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == field


def test_create_section_and_category(sandbox: SandboxHandle, api: Api) -> None:
    r = api.write("POST", "/menus/sections", {"title": {"en": "Late night"}, "availableTimes": _times(2200, 2359)})
    section_id = r.json()["data"]["id"]
    r = api.write(
        "POST", "/menus/categories", {"title": {"en": "Snacks"}, "visibilities": {"1": True}, "sectionID": section_id}
    )
    assert r.status_code == 201
    state = sandbox.state(398)
    assert state["business"]["section"][str(section_id)]["availableTimes"] == _times(2200, 2359)
    assert str(r.json()["data"]["id"]) in state["business"]["category"]


def test_brands_and_branches(client: httpx.Client) -> None:
    data = client.get("/v1/partner/brands").json()["data"]
    assert [b["id"] for b in data[0]["brands"]] == [5297, 1615]
    assert data[0]["business"]["id"] == 398
    page = client.get("/v1/partner/branches", params={"page": 1, "size": 2}).json()["data"]
    assert page["total"] == 3 and len(page["results"]) == 2 and page["size"] == 2
    rest = client.get("/v1/partner/branches", params={"page": 2, "size": 2}).json()["data"]
    ids = {r["id"] for r in page["results"] + rest["results"]}
    assert ids == {1293, 5913, 1294}
    assert client.get("/v1/partner/branches", params={"size": 0}).status_code == 400
