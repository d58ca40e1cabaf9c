"""The envelope on every answer, fresh request ids, 404 for unknown routes, 400 naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.sandbox.routes import ROUTES
from devstack.sandbox.testing import SandboxHandle

ENABLE = "/v1/partner/menus/items/enable"


def test_success_envelope_and_fresh_request_ids(client: httpx.Client) -> None:
    ids = set()
    for _ in range(5):
        body = client.get("/v1/partner/providers").json()
        assert set(body) == {"request_id", "data"}
        assert body["request_id"].startswith("req_")
        ids.add(body["request_id"])
    assert len(ids) == 5


def test_providers_listing(client: httpx.Client) -> None:
    data = client.get("/v1/partner/providers").json()["data"]
    by_id = {p["id"]: p for p in data}
    assert by_id[1]["name"] == "klikit" and by_id[6]["name"] == "grabfood"
    assert all(set(p) == {"id", "name", "display_name"} for p in data)


def test_error_envelope_shape(client: httpx.Client) -> None:
    body = client.get("/v1/partner/menus", params={"brand_id": 5297}).json()
    assert set(body) == {"request_id", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "request_invalid"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/partner/nothing-here"),
        ("GET", "/v1/partner/menus/items/enable"),
        ("DELETE", "/v1/partner/menus"),
        ("PATCH", "/v1/partner/menus/items/abc/visibilities"),
        ("GET", "/somewhere/else"),
        ("GET", "/_sandbox/nothing"),
    ],
)
def test_unknown_route_is_404_in_envelope(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path, headers={"Idempotency-Key": "k"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "resource_not_found"
    assert r.json()["request_id"].startswith("req_")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b"\xff\xfe", "body"),
        (b"[" * 100_000, "body"),
        (b'{"ids": [101], "isEnabled": NaN}', "body"),
        (b'{"ids": [101], "isEnabled": false, "x": 1e999}', "body"),
        (b'{"isEnabled": false}', "ids"),
        (b'{"ids": [], "isEnabled": false}', "ids"),
        (b'{"ids": [101, "x"], "isEnabled": false}', "ids[1]"),
        (b'{"ids": [101], "isEnabled": "no"}', "isEnabled"),
        (b'{"ids": [101], "zoneStores": [{"brandID": 5297}]}', "zoneStores[0].branchID"),
    ],
)
def test_bad_body_is_400_naming_the_field(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str], content: bytes, field: str
) -> None:
    r = client.patch(ENABLE, content=content, headers={"Idempotency-Key": key(), "Content-Type": "application/json"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "request_invalid"
    assert error["message"].startswith(field + ":")
    assert error["details"]["field"] == field
    assert sandbox.calls()[-1]["code"] == "request_invalid"


def test_missing_is_enabled_reads_as_false(
    sandbox: SandboxHandle, client: httpx.Client, key: Callable[[], str]
) -> None:
    assert client.patch(ENABLE, json={"ids": [101]}, headers={"Idempotency-Key": key()}).status_code == 200
    assert client.patch(ENABLE, json={"ids": [102], "isEnabled": None}, headers={"Idempotency-Key": key()}).is_success
    items = sandbox.state(398)["business"]["item"]
    assert items["101"]["enabled"] is False and items["102"]["enabled"] is False


WRITES = [r for r in ROUTES if r.is_write]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10_000) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=8,
)
field_names = st.sampled_from(
    ["ids", "isEnabled", "zoneStores", "visibilities", "stores", "sections", "providerIDs", "title", "vat", "prices"]
)
bodies = st.dictionaries(field_names, json_values, max_size=4) | json_values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route_index=st.integers(0, len(WRITES) - 1), body=bodies, n=st.integers(0, 10**9))
def test_random_bodies_never_crash(client: httpx.Client, route_index: int, body: Any, n: int) -> None:
    route = WRITES[route_index]
    path = "/v1/partner" + route.template.replace("{id}", "101")
    r = client.request(route.method, path, json=body, headers={"Idempotency-Key": f"fuzz-{n}-{route_index}"})
    assert r.status_code in (200, 201, 400, 404, 409), r.text
    assert "request_id" in r.json()
