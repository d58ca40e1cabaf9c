"""The operations API (``/v1/operations/...``): scoped operator tokens, field-named 400s before any
call, and the same operations as the command line against the sandbox (real Redis, real worker)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pipeline_support import BUSINESS, STORES, Pipeline, item_change

from config.settings import Settings
from devstack.sandbox.testing import SandboxHandle
from producers.app import create_app

OPS = {"Authorization": "Bearer tok_ops_398"}
EVERYWHERE = {"Authorization": "Bearer tok_ops_all"}
STORE = STORES[0]
ITEM = {
    "business_id": BUSINESS,
    "title": {"en": "Margherita"},
    "prices": {"1": {"IDR": {"price": 50000}}},
    "visible": [1, 6],
}


@pytest.fixture
def api(tmp_path: Path, pipeline: Pipeline, sandbox: SandboxHandle) -> Iterator[TestClient]:
    partner_key, secret = sandbox.credentials(BUSINESS)
    stores = ", ".join(f"{{ brand_id = {s.brand_id}, branch_id = {s.branch_id} }}" for s in STORES)
    path = tmp_path / "credentials.toml"
    path.write_text(
        f'[business.{BUSINESS}]\npartner_key = "{partner_key}"\nsecret_key = "{secret}"\n'
        f"provider_ids = [1, 6]\nstores = [{stores}]\n"
    )
    settings = Settings(  # type: ignore[call-arg]
        klikit_base_url=sandbox.url,
        credentials_file=path,
        operator_tokens="ops=398:tok_ops_398,ops-all=*:tok_ops_all",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_tokens_and_scopes(api: TestClient, sandbox: SandboxHandle) -> None:
    body = {**ITEM, "request_id": "scoped"}
    assert api.post("/v1/operations/items", json=body).status_code == 401
    assert api.post("/v1/operations/items", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.post("/v1/operations/items", json={**body, "business_id": 399}, headers=OPS).status_code == 403
    unknown = api.post("/v1/operations/items", json={**body, "business_id": 400}, headers=EVERYWHERE)
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_business"
    assert sandbox.calls(business_id=BUSINESS) == []


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"prices": {"6": {"IDR": {"price": 1}}}}, "prices"),
        ({"title": {"english": "Pizza"}}, "title.english"),
        ({"vat": -1}, "vat"),
        ({"sku": "S" * 51}, "sku"),
        ({"prices": {"1": {"IDR": {"price": "free"}}}}, "prices.1.IDR.price"),
        ({"request_id": "no spaces"}, "request_id"),
    ],
)
def test_bad_items_are_400_naming_the_field(
    api: TestClient, sandbox: SandboxHandle, patch: dict[str, Any], field: str
) -> None:
    r = api.post("/v1/operations/items", json={**ITEM, **patch}, headers=OPS)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert sandbox.calls(business_id=BUSINESS) == []


def test_create_once_link_and_failures(api: TestClient, sandbox: SandboxHandle) -> None:
    before = len(sandbox.state(BUSINESS)["business"]["item"])
    first = api.post("/v1/operations/items", json={**ITEM, "request_id": "web-1"}, headers=OPS)
    again = api.post("/v1/operations/items", json={**ITEM, "request_id": "web-1"}, headers=OPS)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["id"] == again.json()["id"] and first.json()["request_id"]
    assert len(sandbox.state(BUSINESS)["business"]["item"]) == before + 1

    option = api.post("/v1/operations/items", json={**ITEM, "modifier_group_id": 8001}, headers=OPS).json()
    assert option["linked"] is True and str(option["id"]) in sandbox.state(BUSINESS)["links"]["8001"]

    sandbox.script("POST", "/v1/partner/menus/items", [{"status": 502, "code": "downstream_unavailable"}] * 4)
    assert api.post("/v1/operations/items", json=ITEM, headers=OPS).status_code == 200
    sandbox.script("POST", "/v1/partner/menus/items", [{"status": 409, "code": "state_idempotency_conflict"}])
    failed = api.post("/v1/operations/items", json=ITEM, headers=OPS)
    assert failed.status_code == 502
    assert failed.json()["code"] == "state_idempotency_conflict" and failed.json()["request_id"]


def test_populate_reset_and_audit(api: TestClient, pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    sandbox.add_store(BUSINESS, 5297, 7777)
    new = [{"brand_id": 5297, "branch_id": 7777}]
    populated = api.post("/v1/operations/stores/populate", json={"business_id": BUSINESS, "stores": new}, headers=OPS)
    assert populated.status_code == 200, populated.text
    assert populated.json()["stores"][0]["outcome"] == "populated"
    bad = api.post("/v1/operations/stores/populate", json={"business_id": BUSINESS, "stores": [{}]}, headers=OPS)
    assert bad.status_code == 400 and bad.json()["field"] == "stores[0].brand_id"

    pipeline.submit([item_change(101, False, int(time.time() * 1000), store=STORE)])
    pipeline.wait_settled()
    preview = api.get(f"/v1/operations/stores/reset?business_id={BUSINESS}&store={STORE.key()}", headers=OPS)
    assert preview.status_code == 200 and preview.json()["count"] == 1
    body: dict[str, Any] = {"business_id": BUSINESS, "stores": [{"brand_id": 5297, "branch_id": 1293}]}
    unconfirmed = api.post("/v1/operations/stores/reset", json=body, headers=OPS)
    assert unconfirmed.status_code == 400 and unconfirmed.json()["field"] == "confirm"
    assert not [c for c in sandbox.calls(business_id=BUSINESS) if c["path"].endswith("/menus/reset")]
    done = api.post("/v1/operations/stores/reset", json={**body, "confirm": BUSINESS}, headers=OPS)
    assert done.status_code == 200 and done.json()["repended"] == 1 and done.json()["request_id"]
    pipeline.wait_settled()
    assert pipeline.published_item_enabled(STORE, 101) is False

    audit = api.get("/v1/operations/audit", headers=OPS).json()
    assert [(a["operation"], a["who"]) for a in audit] == [("reset", "ops"), ("populate", "ops")]
    assert "tok_ops" not in str(audit)
