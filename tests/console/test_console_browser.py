"""The console in a real browser (Playwright driving Debian's Chromium) against the real web app,
a real Dramatiq worker and the klikit sandbox, all as processes.

``make test`` installs Chromium (``make browser``) when it is missing and apt is usable; a missing
browser fails these tests. Each page is saved once under ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "run"))

from console_support import BUSINESS, OPERATOR_TOKENS, PASSWORD, USERS
from run_support import STORES, Stack, availability, env_for

from config.redis import Keys, connect, delete_prefix
from devstack.sandbox.testing import SandboxProcess
from devstack.stack import WEB_ARGV, WORKER_ARGV, wait_for
from workers.changes import Change, Store, Target
from workers.deadletters import DeadLetter, DeadLetterStore
from workers.ledger import Ledger

CHROMIUM = os.environ.get("MENUSYNC_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
ENABLE_PATH = "/v1/partner/menus/items/enable"
STORE = STORES[0]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Debian's Chromium. Missing where apt could install it (``make browser``): a failure, not a skip."""
    if not Path(CHROMIUM).exists():
        if shutil.which("apt-get"):
            pytest.fail(f"no browser at {CHROMIUM}: run `make browser` (apt-get install chromium)", pytrace=False)
        pytest.skip(f"no browser at {CHROMIUM} and no apt-get to install one")
    return CHROMIUM


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, run_prefix: str) -> Iterator[Any]:
    prefix = f"{run_prefix}-console"
    client = connect(redis_url)
    delete_prefix(client, prefix)
    tmp = tmp_path_factory.mktemp("console")
    (tmp / "logs").mkdir()
    with SandboxProcess() as sandbox:
        env = env_for(
            tmp,
            redis_url,
            prefix,
            sandbox,
            console_users=USERS,
            operator_tokens=OPERATOR_TOKENS,
            publish_quiet_ms=200,
            reconcile_after_publish=False,
        )
        s = Stack(env, tmp / "logs")
        s.sandbox = sandbox  # type: ignore[attr-defined]
        s.redis = client  # type: ignore[attr-defined]
        s.keys = Keys(prefix)  # type: ignore[attr-defined]
        s.start("worker", [*WORKER_ARGV[:-4], "--processes", "1", "--threads", "4"])
        s.start_web(WEB_ARGV)
        try:
            yield s
        finally:
            s.stop()
            delete_prefix(client, prefix)
            client.close()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, stack: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=stack.web_url)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Any, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def log_in(page: Any) -> None:
    page.goto("/console")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("[data-testid=operator]")


def now_at(offset_s: float = 0.0) -> datetime:
    return datetime.fromtimestamp(time.time() + offset_s, UTC)


def dead_letter(stack: Any, code: str, status: int, entity: int) -> DeadLetter:
    """A dead-lettered write set aside in the ledger, as the flush leaves one."""
    ledger, store = Ledger(stack.redis, stack.keys), DeadLetterStore(stack.redis, stack.keys)
    target = Target(
        business_id=BUSINESS,
        store=Store(brand_id=STORE[0], branch_id=STORE[1]),
        level="item",
        entity_id=entity,
        field="enabled",
    )
    change = Change(
        id=f"seed-{entity}-{time.time_ns()}", target=target, value=False, occurred_at_ms=int(time.time() * 1000)
    )
    (version,) = ledger.record([change])
    assert version is not None
    record = store.add(
        DeadLetter(
            business_id=BUSINESS,
            targets=[(target.key(), version)],
            change_ids=[change.id],
            operation="enable_items",
            body={"ids": [entity], "isEnabled": False},
            idempotency_key=f"ms1-seed-{entity}",
            error_code=code,
            http_status=status,
            request_id="req_seed",
            reason="seeded by the test",
        )
    )
    ledger.mark_dead(BUSINESS, [(target.key(), version)], record.id)
    return record


def test_log_in_and_fail_to_log_in(page: Any) -> None:
    page.goto("/console/dead-letters")
    assert page.url.endswith("/console/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not the password")
    page.click("form.login button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("[data-testid=login-error]")
    shot(page, "login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("[data-testid=operator]")
    assert page.inner_text("[data-testid=operator]") == "alice"
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["menusync_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"


def test_a_change_arrives_becomes_applied_and_is_found_by_search(page: Any, stack: Any) -> None:
    log_in(page)
    sent = stack.post_changes([availability("browser-1", [101], False, now_at(), STORE)])
    assert sent.status_code == 202, sent.text
    page.goto(f"/console/businesses/{BUSINESS}")
    assert page.locator("[data-testid=history] tr[data-outcome=recorded]").count() >= 1

    def applied() -> bool:
        page.reload()
        return page.locator("[data-testid=history] tr[data-outcome=applied]").count() >= 1

    wait_for(applied, timeout=15, interval=0.3, what="the change to be applied")
    row = page.locator("[data-testid=history] tr[data-outcome=applied]").first.inner_text()
    assert "item 101" in row and "request" in row
    wait_for(lambda: page.reload() or page.locator("[data-testid=publishes] .badge.applied").count(), timeout=10)
    page.fill("[data-testid=why-query]", f"why is item 101 off at store {STORE[0]}:{STORE[1]}?")
    page.click("form.search button")
    answer = page.locator("[data-testid=why-answer]")
    answer.wait_for()
    outcomes = page.locator("[data-testid=why-history] tbody tr").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-outcome'))"
    )
    assert outcomes[0] == "applied" and "recorded" in outcomes, outcomes  # newest first
    assert "browser-1" in page.inner_text("[data-testid=why-history]")
    shot(page, "business")


def test_replay_a_409_dead_letter_with_a_new_key(page: Any, stack: Any) -> None:
    stack.sandbox.script(
        "PATCH",
        ENABLE_PATH,
        [{"status": 409, "code": "state_idempotency_conflict", "message": "another request holds this key"}],
        business_id=BUSINESS,
    )
    assert stack.post_changes([availability("browser-409", [102], False, now_at(), STORE)]).status_code == 202
    store = DeadLetterStore(stack.redis, stack.keys)
    conflict = wait_for(
        lambda: next((r for r in store.list(BUSINESS) if r.error_code == "state_idempotency_conflict"), None),
        timeout=15,
        what="the 409 to be dead-lettered",
    )
    log_in(page)
    page.goto(f"/console/dead-letters/{conflict.id}")
    shot(page, "dead-letter")
    page.click("[data-testid=replay] button")  # without the box: refused, as the CLI refuses it
    assert "new key" in page.inner_text("[data-testid=error]")
    page.go_back()
    page.check("[data-testid=new-key]")
    page.click("[data-testid=replay] button")
    assert "under a new idempotency key" in page.inner_text("[data-testid=notice]")
    page.goto(f"/console/businesses/{BUSINESS}?q=item:102@{STORE[0]}:{STORE[1]}")

    def applied() -> bool:
        page.reload()
        return page.locator("[data-testid=why-history] tr[data-outcome=applied]").count() >= 1

    wait_for(applied, timeout=15, interval=0.3, what="the replayed write to be applied")
    text = page.inner_text("[data-testid=why-history]")
    assert "replayed" in text and "alice" in text


def test_bulk_drop_by_code_after_a_confirmation_stating_the_count(page: Any, stack: Any) -> None:
    seeded = [dead_letter(stack, "request_invalid", 400, 110 + i) for i in range(3)]
    other = dead_letter(stack, "resource_not_found", 404, 120)
    log_in(page)
    page.goto("/console/dead-letters?code=request_invalid")
    assert page.locator("[data-testid=dead-letters] tr[data-code=request_invalid]").count() == 3
    shot(page, "dead-letters")
    page.click("[data-testid=bulk] button[value=drop]")
    confirm = page.locator("[data-testid=confirm]")
    assert "Drop 3 dead letters?" in confirm.locator("h1").inner_text()
    shot(page, "bulk-confirm")
    confirm.locator("button[type=submit]").click()
    assert "dropped 3 dead letter(s)" in page.inner_text("[data-testid=notice]")
    store = DeadLetterStore(stack.redis, stack.keys)
    open_ids = {r.id for r in store.list(BUSINESS)}
    assert not {r.id for r in seeded} & open_ids and other.id in open_ids


def test_a_post_without_the_csrf_token_is_refused(page: Any, stack: Any) -> None:
    record = dead_letter(stack, "request_invalid", 400, 130)
    log_in(page)
    status = page.evaluate(
        """async (id) => {
            const r = await fetch(`/console/dead-letters/${id}/drop`, {method: "POST",
              headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "back=x"});
            return r.status; }""",
        record.id,
    )
    assert status == 403
    assert record.id in {r.id for r in DeadLetterStore(stack.redis, stack.keys).list(BUSINESS)}


def test_the_overview_refreshes_without_a_reload(page: Any, stack: Any) -> None:
    log_in(page)
    row = page.locator(f"tr[data-business='{BUSINESS}']")
    row.wait_for()
    page.evaluate("window.__noReload = 42")
    before = page.get_attribute("#overview-rows", "data-refreshed-at")
    dead_letter(stack, "auth_invalid_credential", 401, 140)
    page.wait_for_function(
        "() => document.querySelector(\"tr[data-business='398'] td[data-col=dead]\").textContent"
        ".includes('auth_invalid_credential')",
        timeout=8_000,
    )
    assert page.evaluate("window.__noReload") == 42
    assert page.get_attribute("#overview-rows", "data-refreshed-at") != before
    assert "alert" in (row.locator("td[data-col=dead]").get_attribute("class") or "")
    shot(page, "overview")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "overview-phone")


def test_mappings_page_shows_per_line_errors(page: Any, tmp_path: Path) -> None:
    log_in(page)
    page.goto("/console/mappings")
    bad = tmp_path / "mappings.csv"
    bad.write_text(
        "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
        "entity,square,FGQ5JJWT2PYTHF35CKZ4DFUR,398,item,101,,\n"
        "entity,square,BADLEVEL,398,dish,102,,\n"
    )
    page.set_input_files("[data-testid=csv]", str(bad))
    page.click("form.upload button")
    assert "line 3" in page.inner_text("[data-testid=import-errors]")
    shot(page, "mappings")
