"""The sandbox behaves as the reference says for the operations menusync's operators run:
populate skips stores with rows *silently*, reset drops store overrides, createItem requires the
provider "1" price and replays its recorded answer for a repeated Idempotency-Key."""

from __future__ import annotations

import httpx

from devstack.sandbox.testing import SandboxHandle

STORE = {"brandID": 5297, "branchID": 1293}
NEW = {"brandID": 5297, "branchID": 7777}
ITEM = {"title": {"en": "Kopi"}, "vat": 0, "visibilities": {"1": True}, "prices": {"1": {"IDR": {"price": 1}}}}


def _write(client: httpx.Client, path: str, body: object, key: str) -> httpx.Response:
    return client.post("/v1/partner" + path, json=body, headers={"Idempotency-Key": key})


def _store_sections(client: httpx.Client, store: dict[str, int]) -> list[object]:
    r = client.get("/v1/partner/menus", params={"brand_id": store["brandID"], "branch_id": store["branchID"]})
    sections: list[object] = r.json()["data"]["menu"]["sections"]
    return sections


def test_populate_answers_success_for_a_store_it_skips(sandbox: SandboxHandle, client: httpx.Client) -> None:
    sandbox.add_store(398, 5297, 7777)
    body = {"stores": [STORE, NEW], "sections": {"6825": {"sequence": 1, "availableTimes": {}}}}
    r = _write(client, "/menus/populate", body, "pop-1")
    assert r.status_code == 200 and r.json()["data"] == {"success": 2, "failed": 0}  # nothing says "skipped"
    stores = sandbox.state(398)["stores"]
    assert stores["5297:7777"]["overrides"]["section"] == {"6825": {"sequence": 1}}
    assert stores["5297:1293"]["overrides"]["section"] == {}
    # Rows without a publish: store-mode getMenu cannot tell this store from a new one.
    assert _store_sections(client, NEW) == [] and _store_sections(client, STORE) == []
    _write(client, "/menus/publish", {"stores": [NEW], "providerIDs": [1]}, "pub-1")
    assert _store_sections(client, NEW)


def test_reset_drops_store_overrides_until_the_next_publish(sandbox: SandboxHandle, client: httpx.Client) -> None:
    body = {"ids": [101], "isEnabled": False, "zoneStores": [STORE]}
    client.patch("/v1/partner/menus/items/enable", json=body, headers={"Idempotency-Key": "en-1"})
    _write(client, "/menus/publish", {"stores": [STORE], "providerIDs": [1]}, "pub-1")
    assert _write(client, "/menus/reset", {"stores": [STORE]}, "reset-1").status_code == 200
    state = sandbox.state(398)
    assert state["stores"]["5297:1293"]["overrides"]["item"] == {}
    assert state["effective_published"]["5297:1293"]["item"]["101"]["enabled"] is False  # the snapshot stays
    _write(client, "/menus/publish", {"stores": [STORE], "providerIDs": [1]}, "pub-2")
    assert sandbox.state(398)["effective_published"]["5297:1293"]["item"]["101"]["enabled"] is True


def test_create_item_replays_its_answer_and_requires_provider_1(sandbox: SandboxHandle, client: httpx.Client) -> None:
    before = len(sandbox.state(398)["business"]["item"])
    first = _write(client, "/menus/items", ITEM, "item-1")
    again = _write(client, "/menus/items", ITEM, "item-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert len(sandbox.state(398)["business"]["item"]) == before + 1
    conflict = _write(client, "/menus/items", {**ITEM, "vat": 11}, "item-1")
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "state_idempotency_conflict"
    missing = _write(client, "/menus/items", {**ITEM, "prices": {"6": {"IDR": {"price": 1}}}}, "item-2")
    assert missing.status_code == 400 and missing.json()["error"]["details"]["field"] == "prices.1"
