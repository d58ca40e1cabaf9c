"""Visibility changes name channels klikit lists: intake checks them (API, Standard Webhooks, CLI).

The app reads the business's provider list from a running klikit sandbox through the credential
(``GET /v1/partner/providers``), caches it in Redis, and falls back to the credential's providers
plus "1" when klikit cannot be reached.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from producer_helpers import API_TOKENS, BUSINESS, STANDARD_SECRETS, STORE, canonical_body, dumps, make_settings
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli.app import app as cli_app
from config.credentials import Credentials
from config.redis import Keys
from devstack.sandbox.providers import PROVIDERS
from devstack.sandbox.testing import SandboxHandle, free_port, running_sandbox
from producers.app import create_app
from producers.mapping import Mappings
from workers.changes import Store, Target
from workers.ledger import Ledger
from workers.providers import ProviderDirectory

SANDBOX_PROVIDERS = {int(p["id"]) for p in PROVIDERS}  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def klikit() -> Iterator[SandboxHandle]:
    with running_sandbox() as handle:
        yield handle


def credentials() -> Credentials:
    """Business 398's sandbox credential; it publishes to klikit (1) and GrabFood (6)."""
    return Credentials.from_mapping(
        {"business": {str(BUSINESS): {"partner_key": "pk_398", "secret_key": "sk_398_sandbox", "provider_ids": [1, 6]}}}
    )


def app_client(klikit_url: str) -> TestClient:
    settings = make_settings(klikit_base_url=klikit_url)
    application = create_app(settings)
    application.state.receiver.runtime.use_credentials(credentials())
    return TestClient(application)


@pytest.fixture
def client(r: redis.Redis, mappings: Mappings, klikit: SandboxHandle) -> Iterator[TestClient]:
    with app_client(klikit.url) as c:
        yield c


@pytest.fixture
def offline_client(r: redis.Redis, mappings: Mappings) -> Iterator[TestClient]:
    """The app with a credential whose klikit does not answer (nothing listens on the port)."""
    with app_client(f"http://127.0.0.1:{free_port()}") as c:
        yield c


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {API_TOKENS[0]}"}


def hide(visibilities: dict[str, bool], **extra: Any) -> dict[str, Any]:
    return canonical_body(kind="visibility", enabled=None, visibilities=visibilities, entity_ids=[101], **extra)


def channel_target(provider: int, store: tuple[int, int] | None = STORE) -> Target:
    return Target(
        business_id=BUSINESS,
        store=Store(brand_id=store[0], branch_id=store[1]) if store else None,
        level="item",
        entity_id=101,
        field="visibilities",
        provider=provider,
    )


def test_hide_on_grabfood_records_grabfood_only(client: TestClient, ledger: Ledger) -> None:
    resp = client.post("/v1/changes", json=hide({"6": False}), headers=auth())
    assert resp.status_code == 202, resp.text
    assert ledger.desired(channel_target(6))[0] is False  # type: ignore[index]
    assert list(ledger.all_desired(BUSINESS)) == [channel_target(6).key()]


def test_a_provider_klikit_does_not_list_is_refused_with_400_naming_it(
    client: TestClient, ledger: Ledger, klikit: SandboxHandle
) -> None:
    resp = client.post("/v1/changes", json=hide({"6": False, "42": False}), headers=auth())
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_body"
    assert body["detail"].startswith("invalid field changes[0].visibilities.42: provider 42 is not a channel")
    assert "GrabFood (6)" in body["detail"]
    assert body["fields"] == [{"field": "changes[0].visibilities.42", "message": body["detail"]}]
    assert ledger.all_desired(BUSINESS) == {}, "nothing of a refused batch reaches the ledger"


def test_the_provider_list_is_read_once_and_cached(client: TestClient, klikit: SandboxHandle) -> None:
    klikit.clear_calls()
    for visible in (False, True, False):
        assert client.post("/v1/changes", json=hide({"6": visible}), headers=auth()).status_code == 202
    reads = [c for c in klikit.calls(business_id=BUSINESS) if c["path"] == "/v1/partner/providers"]
    assert len(reads) == 1


def test_the_standard_webhook_path_refuses_an_unknown_provider_and_records_nothing(
    client: TestClient, ledger: Ledger
) -> None:
    raw = dumps(hide({"99": True}))
    ts = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_vis_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": Webhook(STANDARD_SECRETS[0]).sign(
            "msg_vis_1", datetime.fromtimestamp(ts, tz=UTC), raw.decode()
        ),
    }
    resp = client.post("/webhooks/standard", content=raw, headers=headers)
    assert resp.status_code == 400, resp.text
    assert "changes[0].visibilities.99" in resp.json()["detail"]
    assert ledger.all_desired(BUSINESS) == {}


def test_replace_hides_every_listed_provider_it_does_not_name(client: TestClient, ledger: Ledger) -> None:
    resp = client.post("/v1/changes", json=hide({"1": True}, replace=True), headers=auth())
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == len(SANDBOX_PROVIDERS)
    recorded = {Target.from_key(k).provider: v for k, (v, _) in ledger.all_desired(BUSINESS).items()}
    assert recorded == {p: p == 1 for p in SANDBOX_PROVIDERS}


def test_replace_only_on_visibility_changes(client: TestClient) -> None:
    resp = client.post("/v1/changes", json=canonical_body(replace=True), headers=auth())
    assert resp.status_code == 400 and "replace applies to visibility changes only" in resp.json()["detail"]


def test_klikit_down_accepts_the_configured_channels_and_refuses_others(
    offline_client: TestClient, ledger: Ledger
) -> None:
    resp = offline_client.post("/v1/changes", json=hide({"6": False}), headers=auth())
    assert resp.status_code == 202, resp.text
    resp = offline_client.post("/v1/changes", json=hide({"9": False}), headers=auth())
    assert resp.status_code == 400
    assert "cannot be read now" in resp.json()["detail"] and "changes[0].visibilities.9" in resp.json()["detail"]
    # Hiding "every other channel" needs klikit's real list: retry later.
    resp = offline_client.post("/v1/changes", json=hide({"1": True}, replace=True), headers=auth())
    assert resp.status_code == 503 and resp.json()["error"] == "unavailable"
    assert list(ledger.all_desired(BUSINESS)) == [channel_target(6).key()]


# The command line --------------------------------------------------------------------------------

runner = CliRunner()


def plain(output: str) -> str:
    """The CLI's output without the error box's borders, whitespace collapsed."""
    return " ".join(output.replace("│", " ").split())


def list_providers(r: redis.Redis, keys: Keys) -> None:
    """Cache the sandbox's provider list for the business, as the workers or the web do after reading it."""
    ProviderDirectory(r, keys, lambda business: PROVIDERS).listed(BUSINESS)


def test_cli_hide_on_and_show_on_change_only_those_channels(r: redis.Redis, keys: Keys, ledger: Ledger) -> None:
    list_providers(r, keys)
    args = ["change", "-b", str(BUSINESS), "--level", "item", "--ids", "101", "--hide-on", "6,11", "--show-on", "1"]
    result = runner.invoke(cli_app, [*args, "--store", "5297:1293"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert "hidden on GrabFood (6), ShopeeFood (11); shown on klikit (1)" in text
    assert "every other channel stays as it is" in text
    assert {Target.from_key(k).provider: v for k, (v, _) in ledger.all_desired(BUSINESS).items()} == {
        1: True,
        6: False,
        11: False,
    }


def test_cli_refuses_a_provider_klikit_does_not_list(r: redis.Redis, keys: Keys, ledger: Ledger) -> None:
    list_providers(r, keys)
    result = runner.invoke(
        cli_app, ["change", "-b", str(BUSINESS), "--level", "item", "--ids", "101", "--hide-on", "4"]
    )
    assert result.exit_code != 0
    assert "provider 4 is not a channel" in plain(result.output)
    assert ledger.all_desired(BUSINESS) == {}


def test_cli_replace_hides_the_channels_not_named(r: redis.Redis, keys: Keys, ledger: Ledger) -> None:
    list_providers(r, keys)
    result = runner.invoke(
        cli_app, ["change", "-b", str(BUSINESS), "--level", "item", "--ids", "101", "--show-on", "1", "--replace"]
    )
    assert result.exit_code == 0, result.output
    recorded = {Target.from_key(k).provider: v for k, (v, _) in ledger.all_desired(BUSINESS).items()}
    assert recorded == {p: p == 1 for p in SANDBOX_PROVIDERS}


def test_cli_refuses_a_channel_both_shown_and_hidden(r: redis.Redis) -> None:
    result = runner.invoke(
        cli_app, ["change", "-b", str(BUSINESS), "--level", "item", "--ids", "101", "--hide-on", "6", "--show-on", "6"]
    )
    assert result.exit_code != 0
    assert "both shown and hidden" in plain(result.output)
