"""First contact: enable and visibilities writes land in the model and the call record."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from devstack.sandbox.testing import SandboxHandle


def test_enable_items_business_level(sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]) -> None:
    r = client.patch(
        "/v1/partner/menus/items/enable",
        json={"ids": [101, 102], "isEnabled": False},
        headers={"Idempotency-Key": key()},
    )
    assert r.status_code == 200
    assert r.json()["request_id"].startswith("req_")
    items = sandbox.state(398)["business"]["item"]
    assert items["101"]["enabled"] is False and items["102"]["enabled"] is False
    assert items["103"]["enabled"] is True


def test_visibilities_store_override(sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]) -> None:
    body = {"visibilities": {"1": False}, "zoneStores": [{"brandID": 5297, "branchID": 1293}]}
    r = client.patch("/v1/partner/menus/items/101/visibilities", json=body, headers={"Idempotency-Key": key()})
    assert r.status_code == 200
    state = sandbox.state(398)
    assert state["business"]["item"]["101"]["visibilities"] == {"1": True, "6": True}
    assert state["stores"]["5297:1293"]["overrides"]["item"]["101"] == {"visibilities": {"1": False}}
    (call,) = sandbox.calls()
    assert call["applied"] is True and call["status"] == 200 and call["business_id"] == 398
