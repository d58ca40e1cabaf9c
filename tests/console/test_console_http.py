"""The console and the history API over HTTP (in-process app, real Redis): auth, CSRF, scopes, errors."""

from __future__ import annotations

import time
from typing import Any

from console_support import (
    BUSINESS,
    OPERATOR_TOKEN,
    PASSWORD_HASH,
    SCOPED_TOKEN,
    csrf_of,
    login,
)
from producer_helpers import API_TOKENS, canonical_body

from workers.deadletters import DeadLetter
from workers.runtime import runtime

PAGES = (
    "/console",
    "/console/businesses/398",
    "/console/dead-letters",
    "/console/dead-letters/dl-x",
    "/console/mappings",
)


def test_nothing_is_reachable_without_a_login(client: Any) -> None:
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", path
    assert client.get("/console/fragments/overview").status_code == 401
    for path in ("/console/dead-letters/dl-x/drop", "/console/dead-letters-bulk", "/console/mappings/import"):
        response = client.post(path, data={"csrf": "x"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", path


def test_login_sets_a_strict_http_only_cookie_and_wrong_passwords_fail(client: Any) -> None:
    refused = login(client, password="wrong")
    assert refused.status_code == 401 and "Wrong user name or password" in refused.text
    assert login(client, user="mallory").status_code == 401
    ok = login(client)
    assert ok.status_code == 303 and ok.headers["location"] == "/console"
    cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith("menusync_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # served over http here; https sets it
    overview = client.get("/console")
    assert overview.status_code == 200 and "alice" in overview.text
    assert overview.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_login_without_its_csrf_token_is_refused(client: Any) -> None:
    client.get("/console/login")
    response = client.post("/console/login", data={"username": "alice", "password": "x"}, follow_redirects=False)
    assert response.status_code == 403 and "csrf" in response.text


def test_posts_without_the_csrf_token_are_refused(client: Any) -> None:
    login(client)
    rt = runtime()
    record = rt.dead_letters.add(DeadLetter(business_id=BUSINESS, error_code="request_invalid", reason="scripted"))
    no_token = client.post(f"/console/dead-letters/{record.id}/drop", data={}, follow_redirects=False)
    assert no_token.status_code == 403
    wrong = client.post(f"/console/dead-letters/{record.id}/drop", data={"csrf": "nope"}, follow_redirects=False)
    assert wrong.status_code == 403
    cross = client.post(
        f"/console/dead-letters/{record.id}/drop",
        data={"csrf": csrf_of(client.get("/console").text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    assert rt.dead_letters.count(BUSINESS) == 1
    token = csrf_of(client.get("/console").text)
    done = client.post(f"/console/dead-letters/{record.id}/drop", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and rt.dead_letters.count(BUSINESS) == 0
    dropped = [e for e in _history(client) if e["outcome"] == "dropped"]
    assert dropped and dropped[0]["actor"] == "alice" and dropped[0]["source"] == "console"


def _history(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        f"/v1/businesses/{BUSINESS}/history", params=params, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def test_history_api_needs_an_operator_token_in_scope_and_names_bad_fields(client: Any) -> None:
    url = f"/v1/businesses/{BUSINESS}/history"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": f"Bearer {API_TOKENS[0]}"}).status_code == 401
    forbidden = client.get(url, headers={"Authorization": f"Bearer {SCOPED_TOKEN}"})
    assert forbidden.status_code == 403 and forbidden.json()["field"] == "business_id"
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    for params, field in (({"target": "pizza"}, "target"), ({"since": "soon"}, "since"), ({"cursor": "x"}, "cursor")):
        bad = client.get(url, params=params, headers=auth)
        assert bad.status_code == 400 and bad.json()["field"] == field, params
    assert client.get(url, params={"limit": "0"}, headers=auth).json()["field"] == "limit"
    not_an_id = client.get("/v1/businesses/abc/history", headers=auth)
    assert not_an_id.status_code == 400 and not_an_id.json()["field"] == "business_id"


def test_a_change_is_in_the_history_with_its_token_name(client: Any) -> None:
    sent = client.post(
        "/v1/changes", json=canonical_body(change_id="hist-1"), headers={"Authorization": f"Bearer {API_TOKENS[0]}"}
    )
    assert sent.status_code == 202, sent.text
    entries = _history(client, target="item:101", since="5m")
    assert entries, "the change is not in the history"
    entry = entries[0]
    assert entry["outcome"] == "recorded" and entry["source"] == "api" and entry["change_id"] == "hist-1"
    assert entry["actor"] and entry["received_ms"] <= int(time.time() * 1000)
    page1 = client.get(
        f"/v1/businesses/{BUSINESS}/history",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    ).json()
    assert len(page1["entries"]) == 1


def test_operator_token_login_is_scoped(client: Any) -> None:
    assert login(client, user="", password=SCOPED_TOKEN).status_code == 303
    page = client.get(f"/console/businesses/{BUSINESS}")
    assert page.status_code == 403 and "outside your scope" in page.text


def test_mapping_upload_shows_line_errors_then_imports(client: Any) -> None:
    login(client)
    token = csrf_of(client.get("/console/mappings").text)
    bad_csv = (
        "kind,source,pos_id,business_id,level,entity_id,brand_id,branch_id\n"
        "entity,square,ABC,398,item,101,,\n"
        "entity,square,DEF,398,dish,102,,\n"
        "location,square,LOC,398,,,x,1293\n"
    )
    bad = client.post(
        "/console/mappings/import", data={"csrf": token}, files={"file": ("m.csv", bad_csv.encode(), "text/csv")}
    )
    assert bad.status_code == 400
    assert "line 3" in bad.text and "line 4" in bad.text and "Nothing imported" in bad.text
    good_csv = bad_csv.splitlines()[0] + "\n" + bad_csv.splitlines()[1] + "\n"
    good = client.post(
        "/console/mappings/import", data={"csrf": token}, files={"file": ("m.csv", good_csv.encode(), "text/csv")}
    )
    assert good.status_code == 200 and "Imported 1 row" in good.text
    imported = [e for e in _history(client) if e["outcome"] == "mappings_imported"]
    assert imported[0]["actor"] == "alice"
    no_token = client.post("/console/mappings/import", files={"file": ("m.csv", good_csv.encode(), "text/csv")})
    assert no_token.status_code == 403


def test_pages_render_and_never_show_secrets(client: Any) -> None:
    login(client)
    rt = runtime()
    record = rt.dead_letters.add(
        DeadLetter(business_id=BUSINESS, error_code="state_idempotency_conflict", http_status=409, reason="conflict")
    )
    seen = ""
    for path in (*PAGES, f"/console/dead-letters/{record.id}", "/console/businesses/398?q=item+101+at+5297:1293"):
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        seen += response.text
    seen += client.get("/console/fragments/overview").text
    for secret in (PASSWORD_HASH, OPERATOR_TOKEN, SCOPED_TOKEN, *API_TOKENS):
        assert secret not in seen
    bad = client.get("/console/dead-letters", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.text


def test_the_overview_is_paged_by_business_id(client: Any) -> None:
    from workers.changes import Change, Store, Target

    login(client)
    rt = runtime()
    for b in (BUSINESS, BUSINESS + 1, BUSINESS + 2):
        target = Target(business_id=b, store=Store(brand_id=1, branch_id=2), level="item", entity_id=5, field="enabled")
        rt.ledger.record([Change(id=f"pg-{b}", target=target, value=True, occurred_at_ms=1_795_000_000_000)])
    first = client.get("/console", params={"limit": 2})
    assert first.status_code == 200
    assert f'data-business="{BUSINESS + 1}"' in first.text and f'data-business="{BUSINESS + 2}"' not in first.text
    assert "2 of 3" in first.text and f'href="/console/?after={BUSINESS + 1}&amp;limit=2"' in first.text
    assert 'data-refresh="/console/fragments/overview?limit=2"' in first.text
    second = client.get("/console/fragments/overview", params={"after": BUSINESS + 1, "limit": 2})
    assert second.status_code == 200
    assert f'data-business="{BUSINESS + 2}"' in second.text and f'data-business="{BUSINESS}"' not in second.text
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"), ({"after": "x"}, "after")):
        bad = client.get("/console", params=params)
        assert bad.status_code == 400 and f"{field}:" in bad.text, (params, bad.text[:200])
