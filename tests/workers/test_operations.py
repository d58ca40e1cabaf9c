"""Store and menu operations (``menusync stores ...``, ``menusync items ...``, ``menusync audit``)
against the sandbox over loopback HTTP, real Redis and an in-process Dramatiq worker."""

from __future__ import annotations

import json
import time
from typing import Any

from pipeline_support import BUSINESS, STORES, Pipeline, item_change
from typer.testing import CliRunner, Result

from cli.app import app
from devstack.sandbox.testing import SandboxHandle

runner = CliRunner()
STORE = STORES[0]
NEW_STORE = "5297:7777"
PIZZA = ["--title", "en=Margherita", "--title", "id=Margherita", "--price", "1:IDR:50000", "--visible", "1,6"]


def cli(*args: Any) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def out(result: Result) -> Any:
    """The JSON a ``--json`` command printed (log lines of this test process may precede it)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    return json.loads("\n".join(lines[start:]))


def calls_to(sandbox: SandboxHandle, suffix: str, method: str = "POST") -> list[dict[str, Any]]:
    return [c for c in sandbox.calls(business_id=BUSINESS) if c["method"] == method and c["path"].endswith(suffix)]


def store_sections(pipeline: Pipeline, store: str) -> list[Any]:
    brand, branch = (int(p) for p in store.split(":"))
    data = pipeline.rt.client(BUSINESS).get_menu(brand, branch).data
    sections: list[Any] = data["menu"]["sections"]
    return sections


def publish_store(pipeline: Pipeline, entity: int = 101) -> str:
    """A store-level change at STORE, written and published: the store shows a published menu."""
    pipeline.submit([item_change(entity, False, int(time.time() * 1000), store=STORE)])
    pipeline.wait_settled()
    assert pipeline.published_item_enabled(STORE, entity) is False
    return f"{BUSINESS}|{STORE.key()}|item|{entity}|enabled"


# --- populate --------------------------------------------------------------------------------------------


def test_populate_a_new_store_then_skip_stores_with_rows(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    sandbox.add_store(BUSINESS, 5297, 7777)
    assert store_sections(pipeline, NEW_STORE) == []
    done = cli("stores", "populate", BUSINESS, "--store", NEW_STORE, "--sections", "6825,6826", "--json")
    assert done.exit_code == 0, done.output
    result = out(done)
    assert [(s["store"], s["outcome"]) for s in result["stores"]] == [(NEW_STORE, "populated")]
    assert result["request_id"] and result["publish"] == "scheduled"
    (call,) = calls_to(sandbox, "/menus/populate")
    assert call["body"]["stores"] == [{"brandID": 5297, "branchID": 7777}]
    assert set(call["body"]["sections"]) == {"6825", "6826"}
    assert sandbox.state(BUSINESS)["stores"][NEW_STORE]["has_menu_rows"] is True
    pipeline.wait_settled()  # the publish follows through the debounced publish actor
    assert any(c["body"]["stores"] == [{"brandID": 5297, "branchID": 7777}] for c in pipeline.publishes())
    assert store_sections(pipeline, NEW_STORE)

    publish_store(pipeline)
    again = cli("stores", "populate", BUSINESS, "--store", NEW_STORE, "--store", STORE.key())
    assert again.exit_code == 3, again.output  # skipped stores: never claimed as populated
    text = again.output
    assert f"{NEW_STORE}: skipped: has " in text and f"{STORE.key()}: skipped: has " in text
    assert "rows; use sync" in text and "populated" not in text.replace("nothing populated", "")
    assert len(calls_to(sandbox, "/menus/populate")) == 1  # nothing sent to klikit
    audit = out(cli("audit", "--json"))
    assert [a["operation"] for a in audit[:2]] == ["populate", "populate"]
    assert audit[0]["skipped"] == [NEW_STORE, STORE.key()] and audit[1]["populated"] == [NEW_STORE]


def test_populate_reports_a_store_menusync_populated_but_not_yet_published(
    make_pipeline: Any, sandbox: SandboxHandle
) -> None:
    make_pipeline(start=False)  # no worker: the publish does not happen
    sandbox.add_store(BUSINESS, 5297, 7777)
    assert cli("stores", "populate", BUSINESS, "--store", NEW_STORE).exit_code == 0
    again = cli("stores", "populate", BUSINESS, "--store", NEW_STORE)
    assert again.exit_code == 3 and "populated by menusync before" in again.output
    assert len(calls_to(sandbox, "/menus/populate")) == 1


def test_populate_retries_a_502_and_stops_on_a_409(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    sandbox.add_store(BUSINESS, 5297, 7777)
    sandbox.add_store(BUSINESS, 5297, 7778)
    error = {"status": 502, "code": "downstream_unavailable"}
    sandbox.script("POST", "/v1/partner/menus/populate", [error] * 4)
    done = cli("stores", "populate", BUSINESS, "--store", NEW_STORE, "--sections", "6825", "--json")
    assert done.exit_code == 0, done.output
    assert out(done)["stores"][0]["outcome"] == "populated"
    assert sandbox.state(BUSINESS)["stores"][NEW_STORE]["has_menu_rows"] is True

    sandbox.script("POST", "/v1/partner/menus/populate", [{"status": 409, "code": "state_idempotency_conflict"}])
    failed = cli("stores", "populate", BUSINESS, "--store", "5297:7778", "--sections", "6825", "--json")
    assert failed.exit_code == 1, failed.output
    answer = out(failed)
    assert answer["ok"] is False and answer["code"] == "state_idempotency_conflict" and answer["request_id"]
    assert sandbox.state(BUSINESS)["stores"]["5297:7778"]["has_menu_rows"] is False


# --- reset -----------------------------------------------------------------------------------------------


def test_reset_reapplies_menusync_store_overrides(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    target = publish_store(pipeline)
    (first_write,) = [c for c in pipeline.writes() if c["path"].endswith("/items/enable")]
    preview = cli("stores", "reset", BUSINESS, "--store", STORE.key(), "--yes")
    assert preview.exit_code == 0, preview.output
    assert "menusync holds 1 store-level target(s) there" in preview.output and target in preview.output
    assert "1 store-level target(s) pending again under a new idempotency key" in preview.output
    assert "request_id req_" in preview.output or "request_id " in preview.output
    pipeline.wait_settled()
    writes = [c for c in pipeline.writes() if c["path"].endswith("/items/enable")]
    assert len(writes) == 2 and writes[1]["idempotency_key"] != first_write["idempotency_key"]
    assert sandbox.state(BUSINESS)["stores"][STORE.key()]["overrides"]["item"] == {"101": {"enabled": False}}
    assert pipeline.published_item_enabled(STORE, 101) is False
    (entry,) = out(cli("audit", "--json"))
    assert entry["operation"] == "reset" and entry["mode"] == "reapply" and entry["targets"] == 1
    assert entry["stores"] == [STORE.key()] and entry["request_id"] and entry["who"]


def test_reset_forget_clears_the_ledger(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    target = publish_store(pipeline)
    done = cli("stores", "reset", BUSINESS, "--store", STORE.key(), "--confirm", BUSINESS, "--forget", "--json")
    assert done.exit_code == 0, done.output
    result = out(done)
    assert result["forgotten"] == 1 and result["targets"] == [target] and result["request_id"]
    assert target not in pipeline.rt.ledger.all_desired(BUSINESS)
    pipeline.wait_settled()
    assert sandbox.state(BUSINESS)["stores"][STORE.key()]["overrides"]["item"] == {}
    assert pipeline.published_item_enabled(STORE, 101) is True  # the business-level menu wins, published
    assert len([c for c in pipeline.writes() if c["path"].endswith("/items/enable")]) == 1


def test_reset_needs_a_confirmation(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    refused = cli("stores", "reset", BUSINESS, "--store", STORE.key())
    assert refused.exit_code == 2 and "refusing to reset without a confirmation" in refused.output
    wrong = cli("stores", "reset", BUSINESS, "--confirm", 399)
    assert wrong.exit_code == 2 and "does not match" in wrong.output
    assert calls_to(sandbox, "/menus/reset") == []


def test_reset_retries_a_502_and_a_409_leaves_the_ledger(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    target = publish_store(pipeline)
    sandbox.script("POST", "/v1/partner/menus/reset", [{"status": 409, "code": "state_idempotency_conflict"}])
    failed = cli("stores", "reset", BUSINESS, "--store", STORE.key(), "--yes")
    assert failed.exit_code == 1 and "state_idempotency_conflict" in failed.output
    assert pipeline.rt.ledger.pending_count(BUSINESS) == 0 and target in pipeline.rt.ledger.all_desired(BUSINESS)
    assert sandbox.state(BUSINESS)["stores"][STORE.key()]["overrides"]["item"] == {"101": {"enabled": False}}

    sandbox.script("POST", "/v1/partner/menus/reset", [{"status": 502, "code": "downstream_unavailable"}] * 4)
    done = cli("stores", "reset", BUSINESS, "--store", STORE.key(), "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert out(done)["repended"] == 1
    pipeline.wait_settled()
    assert pipeline.published_item_enabled(STORE, 101) is False


# --- items -----------------------------------------------------------------------------------------------


def test_create_an_item_once_per_request_id(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    before = len(sandbox.state(BUSINESS)["business"]["item"])
    first = cli("items", "create", BUSINESS, *PIZZA, "--sku", "PIZZA-1", "--vat", 11, "--request-id", "pizza-1")
    assert first.exit_code == 0, first.output
    assert "request id pizza-1" in first.output and "klikit request_id" in first.output
    again = cli(
        "items", "create", BUSINESS, *PIZZA, "--sku", "PIZZA-1", "--vat", 11, "--request-id", "pizza-1", "--json"
    )
    assert again.exit_code == 0, again.output
    item_id = out(again)["id"]
    assert f"created item {item_id}" in first.output
    assert len(sandbox.state(BUSINESS)["business"]["item"]) == before + 1  # created once
    creates = calls_to(sandbox, "/menus/items")
    assert [(c["applied"], c["replayed"]) for c in creates] == [(True, False), (False, True)]
    assert creates[0]["body"]["prices"] == {"1": {"IDR": {"price": 50000, "takeAwayPrice": 50000}}}
    assert creates[0]["body"]["visibilities"] == {"1": True, "6": True}


def test_create_a_modifier_and_link_it(pipeline: Pipeline, sandbox: SandboxHandle) -> None:
    done = cli("items", "create", BUSINESS, *PIZZA, "--modifier", "--group", 8001, "--json")
    assert done.exit_code == 0, done.output
    result = out(done)
    assert result["kind"] == "modifier" and result["linked"] is True and result["link_request_id"]
    assert str(result["id"]) in sandbox.state(BUSINESS)["links"]["8001"]
    assert calls_to(sandbox, "/menus/items")[0]["body"]["onlyModifier"] is True
    pipeline.wait_settled()
    assert pipeline.publishes()  # the link is published


def test_refused_before_any_call(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    cases = [
        (["--title", "en=Pizza", "--price", "6:IDR:50000"], "--price", 'klikit provider "1"'),
        (["--title", "EN=Pizza", "--price", "1:IDR:50000"], "--title", "ISO 639-1"),
        (["--title", "en=Pizza", "--price", "1:IDR:50000", "--vat", "-1"], "--vat", ">= 0"),
        (["--title", "en=Pizza", "--price", "1:IDR:50000", "--sku", "S" * 51], "--sku", "50"),
        (["--title", "en=Pizza", "--price", "1:idr:5"], "--price", "ISO 4217"),
        (["--title", "en=Pizza", "--price", "1:IDR:5", "--modifier"], "--group", "together"),
    ]
    for args, option, words in cases:
        refused = cli("items", "create", BUSINESS, *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert option in refused.output and words in refused.output, refused.output
    assert cli("stores", "populate", BUSINESS, "--store", "5297-1293").exit_code == 2
    for command in (["stores", "populate", 401, "--store", "1:2"], ["stores", "reset", 401, "--yes"]):
        unknown = cli(*command)
        assert unknown.exit_code == 2 and "no klikit credentials for business 401" in unknown.output
    assert cli("items", "create", 401, "--title", "en=Pizza", "--price", "1:IDR:5").exit_code == 2
    assert sandbox.calls(business_id=BUSINESS) == []


def test_create_retries_a_502_and_reports_a_409(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    before = len(sandbox.state(BUSINESS)["business"]["item"])
    sandbox.script("POST", "/v1/partner/menus/items", [{"status": 502, "code": "downstream_unavailable"}] * 4)
    done = cli("items", "create", BUSINESS, *PIZZA, "--json")
    assert done.exit_code == 0, done.output
    assert len(sandbox.state(BUSINESS)["business"]["item"]) == before + 1
    sandbox.script("POST", "/v1/partner/menus/items", [{"status": 409, "code": "state_idempotency_conflict"}])
    failed = cli("items", "create", BUSINESS, *PIZZA)
    assert failed.exit_code == 1
    assert (
        "state_idempotency_conflict" in failed.output and "HTTP 409" in failed.output and "request_id=" in failed.output
    )


def test_a_failed_link_says_how_to_finish(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    link = "/v1/partner/menus/modifier-groups/modifiers"
    sandbox.script("POST", link, [{"status": 502, "code": "downstream_unavailable"}] * 3)
    sandbox.script("POST", link, [{"status": 409, "code": "state_idempotency_conflict"}])
    failed = cli("items", "create", BUSINESS, *PIZZA, "--modifier", "--group", 8001, "--request-id", "size-l")
    assert failed.exit_code == 1, failed.output
    assert "state_idempotency_conflict" in failed.output and "not linked to group 8001" in failed.output
    finish = failed.output.strip().splitlines()[-1].strip()
    assert finish.startswith(f"menusync items link {BUSINESS} --modifier-id ")
    modifier_id = int(finish.split("--modifier-id ")[1].split()[0])
    assert str(modifier_id) not in sandbox.state(BUSINESS)["links"]["8001"]
    done = cli(*finish.split()[1:])
    assert done.exit_code == 0, done.output
    assert str(modifier_id) in sandbox.state(BUSINESS)["links"]["8001"]
    assert len(calls_to(sandbox, "/menus/items")) == 1  # created once


def test_a_429_is_waited_out_through_the_shared_budget(make_pipeline: Any, sandbox: SandboxHandle) -> None:
    make_pipeline(start=False)
    sandbox.script(
        "POST", "/v1/partner/menus/items", [{"status": 429, "code": "rate_limit_exceeded", "retry_after": 3}]
    )
    started = time.monotonic()
    done = cli("items", "create", BUSINESS, *PIZZA, "--json")
    assert done.exit_code == 0, done.output
    assert time.monotonic() - started >= 2.9  # klikit's Retry-After (longer than the client waits in place)
    creates = calls_to(sandbox, "/menus/items")
    assert [c["status"] for c in creates] == [429, 201]
