"""The operator console's routes (``/console``): thin handlers over :mod:`producers.console.views`.

Every page but the login form needs a session (:mod:`producers.console.auth`); every POST needs
the session's CSRF token. Redis work runs on a worker thread. Pages are rendered server-side with
Jinja2 (autoescaped); the overview's table body is re-fetched every few seconds by
``static/console.js`` (``GET /console/fragments/overview``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from producers.console import views
from producers.console.auth import COOKIE_PATH, LOGIN_COOKIE, SESSION_COOKIE, Operator, Sessions, same_token
from producers.console.forms import FormError, parse_form
from workers import dlq_actions, history
from workers.clock import now_ms
from workers.history import FilterError
from workers.runtime import Runtime
from workers.status import STATUS_PAGE_MAX, STATUS_PAGE_SIZE

log = structlog.get_logger("producers.console")

HERE = Path(__file__).parent
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_QUERY = re.compile(
    r"^\s*(?P<level>section|category|item|modifier_group|modifier)\s*[: ]\s*(?P<entity>\d{1,16})"
    r"(?:\s*(?:@|\bat\b(?:\s+store)?)\s*(?P<scope>\d{1,16}:\d{1,16}|\*))?\s*\??\s*$",
    re.IGNORECASE,
)


#: Where a dead-letter action may send the browser back to: the dead-letter list with its filter.
_SAFE_BACK = re.compile(r"/console/dead-letters(?:\?[A-Za-z0-9_.:%&=+-]{0,400})?")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ago(ms: int | None, now: int | None = None) -> str:
    if ms is None:
        return "-"
    delta = (now if now is not None else now_ms()) - ms
    future = delta < 0
    s = abs(delta) / 1000
    if s < 5:
        text = "just now"
        return text
    if s < 60:
        text = f"{s:.0f} s"
    elif s < 3600:
        text = f"{s / 60:.0f} min"
    elif s < 86400:
        text = f"{s / 3600:.0f} h"
    else:
        text = f"{s / 86400:.0f} d"
    return f"in {text}" if future else f"{text} ago"


def exact(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(ms: int | None) -> Markup:
    """``3 min ago`` with the exact time on hover."""
    if ms is None:
        return Markup("-")
    iso = datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, exact(ms), ago(ms))


def normalize_query(text: str) -> str:
    """``why is item 101 off at store 5297:1293?`` / ``item:101@5297:1293`` -> ``item:101@5297:1293``."""
    cleaned = re.sub(r"^\s*why\s+is\s+", "", text, flags=re.IGNORECASE)
    cleaned = re.sub(r"\s+(?:off|on|hidden|disabled|sold out)\b", "", cleaned, flags=re.IGNORECASE)
    match = _QUERY.match(cleaned)
    if match is None:
        return text.strip()
    query = f"{match['level'].lower()}:{match['entity']}"
    return query + (f"@{match['scope']}" if match["scope"] else "")


class Console:
    """What every console handler shares: the runtime, the sessions, the templates, form and scope checks.

    ``known`` answers the businesses the credentials file names.
    """

    def __init__(self, rt: Runtime, sessions: Sessions, known: Any) -> None:
        self.rt = rt
        self.sessions = sessions
        self.known = known
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
        )
        self.env.globals.update(
            when=when, ago=ago, exact=exact, label=views.target_label, columns=views.COLUMNS, active=""
        )
        self.env.filters["duration"] = views.duration

    def __repr__(self) -> str:
        return f"Console({self.rt.keys!r})"

    def page(self, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=code, headers=HEADERS)

    async def operator_of(self, request: Request) -> Operator | None:
        return await run_in_threadpool(self.sessions.get, request.cookies.get(SESSION_COOKIE))

    def to_login(self) -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303, headers=HEADERS)

    async def read_form(
        self, request: Request, operator: Operator | None, limit: int = MAX_FORM_BYTES
    ) -> dict[str, Any]:
        """The POST's form, refused (403) without the session's CSRF token or from another origin."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise Refused(403, "cross-origin form refused")
        declared = request.headers.get("content-length")
        if declared and (declared.isascii() and declared.isdigit()) and int(declared) > limit:
            raise Refused(413, f"form over {limit} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, f"form over {limit} bytes")
        try:
            form = parse_form(body, request.headers.get("content-type", ""))
        except FormError as exc:
            raise Refused(400, f"form: {exc}") from None
        expected = operator.csrf if operator else request.cookies.get(LOGIN_COOKIE, "")
        token = form.get("csrf")
        if not isinstance(token, str) or not same_token(token, expected):
            raise Refused(403, "csrf: missing or invalid CSRF token; reload the page and try again")
        return form

    def refused(self, exc: Refused, operator: Operator | None) -> HTMLResponse:
        return self.page("error.html", exc.status, operator=operator, message=exc.message, status=exc.status)

    def int_field(self, value: Any, name: str) -> int | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 16:
            raise Refused(400, f"{name}: {text[:20]!r} is not a business id")
        return int(text)

    def allowed_business(self, operator: Operator, business_id: int) -> None:
        if not operator.allows(business_id):
            raise Refused(403, f"business_id: {business_id} is outside your scope")

    def overview_page(self, operator: Operator, params: Any) -> dict[str, Any]:
        """One page of the overview: its rows, where it is, and the query that shows it again."""
        after = self.int_field(params.get("after"), "after")
        limit = self.limit_field(params.get("limit"))
        rows, page = views.overview(self.rt, operator.businesses, self.known.businesses(), after=after, limit=limit)
        query = urlencode({k: v for k, v in (("after", after), ("limit", limit)) if v is not None})
        return {
            "rows": rows,
            "page": page,
            "limit": limit,
            "after": after,
            "query": query,
            "default_limit": STATUS_PAGE_SIZE,
        }

    def limit_field(self, value: Any) -> int:
        if value in (None, ""):
            return STATUS_PAGE_SIZE
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:6]) <= STATUS_PAGE_MAX:
            raise Refused(400, f"limit: {text[:20]!r} is not a page size from 1 to {STATUS_PAGE_MAX}")
        return int(text)

    def business_data(self, business_id: int, params: dict[str, str]) -> dict[str, Any]:
        target = params.get("target") or None
        source = params.get("source") or None
        outcome = params.get("outcome") or None
        query = normalize_query(params.get("q", "")) if params.get("q") else ""
        entries, cursor = history.read_history(
            self.rt.redis,
            self.rt.keys,
            business_id,
            target=target,
            source=source,
            outcome=outcome,
            cursor=params.get("cursor") or None,
            limit=100,
        )
        answer = None
        if query:
            found, _ = history.read_history(self.rt.redis, self.rt.keys, business_id, target=query, limit=50)
            set_by: dict[str, Any] = {}
            for entry in found:  # newest first: the first "recorded" of a target set its current value
                if entry.outcome == "recorded":
                    set_by.setdefault(entry.target, entry)
            state = views.target_state(self.rt, business_id, query)
            answer = {"query": query, "state": state, "entries": found, "set_by": set_by}
        return {
            "business_id": business_id,
            "pending": views.pending_rows(self.rt, business_id),
            "pending_count": self.rt.ledger.pending_count(business_id),
            "entries": entries,
            "next_cursor": cursor,
            "publishes": history.publishes(self.rt.redis, self.rt.keys, business_id),
            "answer": answer,
            "filters": {"target": target or "", "source": source or "", "outcome": outcome or ""},
            "q": params.get("q", ""),
            "outcomes": history.OUTCOMES,
        }

    def time_field(self, value: Any, name: str) -> int | None:
        if not value:
            return None
        try:
            return history.parse_since(str(value), field=name)
        except FilterError as exc:
            raise Refused(400, f"{name}: {exc}") from None

    def dl_filters(self, params: Any) -> dict[str, Any]:
        since, until = self.time_field(params.get("since"), "since"), self.time_field(params.get("until"), "until")
        code = str(params.get("code") or "").strip()[:64] or None
        return {
            "business_id": self.int_field(params.get("business"), "business"),
            "code": code,
            "since": since,
            "until": until,
        }

    def matching(self, operator: Operator, f: dict[str, Any]) -> list[Any]:
        if f["business_id"] is not None:
            self.allowed_business(operator, f["business_id"])
        records = dlq_actions.select(
            self.rt, business_id=f["business_id"], code=f["code"], since_ms=f["since"], until_ms=f["until"]
        )
        return [r for r in records if operator.allows(r.business_id)]

    def dl_page(self, operator: Operator, f: dict[str, Any]) -> dict[str, Any]:
        records = self.matching(operator, f)
        codes: dict[str, int] = {}
        for r in records:
            codes[r.error_code] = codes.get(r.error_code, 0) + 1
        all_codes = sorted(self.rt.dead_letters.counts_by_code(f["business_id"]))
        return {"records": records[:500], "count": len(records), "codes": codes, "all_codes": all_codes}

    def filter_text(self, params: Any) -> dict[str, str]:
        return {k: str(params.get(k) or "")[:64] for k in ("business", "code", "since", "until")}


def build_router(rt: Runtime, sessions: Sessions, known: Any) -> APIRouter:
    """The console's router. ``known`` answers the businesses the credentials file names."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    console = Console(rt, sessions, known)
    for add_routes in (
        _asset_routes,
        _login_routes,
        _overview_routes,
        _business_routes,
        _dead_letter_routes,
        _mapping_routes,
    ):
        add_routes(router, console)
    return router


def _asset_routes(router: APIRouter, c: Console) -> None:
    """Static assets (no data in them)."""

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404)
        return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name], headers=HEADERS)


def _login_routes(router: APIRouter, c: Console) -> None:
    """Login and logout: the only pages without a session."""

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        if await c.operator_of(request):
            return RedirectResponse("/console", status_code=303)
        import secrets

        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = c.page("login.html", operator=None, csrf=token, error="")
        _cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        try:
            form = await c.read_form(request, None)
        except Refused as exc:
            return c.refused(exc, None)
        user = str(form.get("username", ""))[:64].strip()
        password = str(form.get("password", ""))[:1024]
        found = await run_in_threadpool(c.sessions.check_login, user, password)
        if found is None:
            log.info("console login refused", known_user=user in c.sessions.users)
            token = request.cookies.get(LOGIN_COOKIE, "")
            return c.page("login.html", 401, operator=None, csrf=token, error="Wrong user name or password.")
        name, businesses = found
        session_id = await run_in_threadpool(c.sessions.create, name, businesses)
        log.info("console login", user=name)
        response = RedirectResponse("/console", status_code=303, headers=HEADERS)
        _cookie(response, request, SESSION_COOKIE, session_id, max_age=None)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            await c.read_form(request, operator)
        except Refused as exc:
            return c.refused(exc, operator)
        await run_in_threadpool(c.sessions.end, operator)
        response = c.to_login()
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response


def _overview_routes(router: APIRouter, c: Console) -> None:
    """The overview of every business in the operator's scope, and its refreshed fragment."""

    @router.get("")
    @router.get("/")
    async def overview(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            data = await run_in_threadpool(c.overview_page, operator, request.query_params)
        except Refused as exc:
            return c.refused(exc, operator)
        return c.page("overview.html", operator=operator, now=now_ms(), **data)

    @router.get("/fragments/overview")
    async def overview_fragment(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return Response("login needed", status_code=401, headers=HEADERS)
        try:
            data = await run_in_threadpool(c.overview_page, operator, request.query_params)
        except Refused as exc:
            return Response(exc.message, status_code=exc.status, headers=HEADERS)
        return c.page("_overview_rows.html", now=now_ms(), **data)


def _business_routes(router: APIRouter, c: Console) -> None:
    """One business: pending targets, the change history, "why is ..." answers."""

    @router.get("/businesses/{business}")
    async def business(request: Request, business: str) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            business_id = c.int_field(business, "business_id")
            if business_id is None:
                raise Refused(400, "business_id: missing")
            c.allowed_business(operator, business_id)
            params = {k: v[:200] for k, v in request.query_params.items()}
            data = await run_in_threadpool(c.business_data, business_id, params)
        except Refused as exc:
            return c.refused(exc, operator)
        except FilterError as exc:
            return c.refused(Refused(400, f"{exc.field}: {exc}"), operator)
        return c.page("business.html", operator=operator, now=now_ms(), **data)


def _dead_letter_routes(router: APIRouter, c: Console) -> None:
    """Dead letters: the filtered list, one record, replay and drop (one or in bulk)."""

    @router.get("/dead-letters")
    async def dead_letters(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            f = c.dl_filters(request.query_params)
            data = await run_in_threadpool(c.dl_page, operator, f)
        except Refused as exc:
            return c.refused(exc, operator)
        return c.page(
            "dead_letters.html",
            operator=operator,
            now=now_ms(),
            filters=c.filter_text(request.query_params),
            resolved=f,
            notice=request.query_params.get("notice", "")[:500],
            needs_new_key=dlq_actions.needs_new_key,
            **data,
        )

    @router.get("/dead-letters/{dead_letter_id}")
    async def dead_letter(request: Request, dead_letter_id: str) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        record = await run_in_threadpool(c.rt.dead_letters.get, dead_letter_id[:80])
        if record is None or not operator.allows(record.business_id):
            return c.refused(Refused(404, f"no dead letter {dead_letter_id[:80]!r}"), operator)
        return c.page("dead_letter.html", operator=operator, d=views.dead_letter_view(record), now=now_ms())

    @router.post("/dead-letters/{dead_letter_id}/{action}")
    async def dead_letter_action(request: Request, dead_letter_id: str, action: str) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            form = await c.read_form(request, operator)
            if action not in ("replay", "drop"):
                raise Refused(404, f"no action {action[:20]!r}")
            record = await run_in_threadpool(c.rt.dead_letters.get, dead_letter_id[:80])
            if record is None or not operator.allows(record.business_id):
                raise Refused(404, f"no dead letter {dead_letter_id[:80]!r}")
        except Refused as exc:
            return c.refused(exc, operator)
        if action == "replay":
            new_key = form.get("new_key") in ("1", "on", "true")
            result = await run_in_threadpool(
                lambda: dlq_actions.replay(c.rt, record, new_key=new_key, actor=operator.name, source="console")
            )
        else:
            result = await run_in_threadpool(
                lambda: dlq_actions.drop(c.rt, record, actor=operator.name, source="console")
            )
        log.info("console dead letter action", user=operator.name, action=action, dead_letter_id=record.id)
        if not result.ok and result.status == "needs_new_key":
            return c.refused(Refused(409, "new_key: " + result.message), operator)
        notice = " ".join([result.message, *result.warnings])
        back = str(form.get("back") or "")
        target = back if _SAFE_BACK.fullmatch(back) and "//" not in back else "/console/dead-letters"
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}{urlencode({'notice': notice})}", status_code=303, headers=HEADERS)

    @router.post("/dead-letters-bulk")
    async def dead_letters_bulk(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            form = await c.read_form(request, operator)
            action = str(form.get("action", ""))
            if action not in ("replay", "drop"):
                raise Refused(400, "action: must be replay or drop")
            f = c.dl_filters(form)
            records = await run_in_threadpool(c.matching, operator, f)
        except Refused as exc:
            return c.refused(exc, operator)
        new_key = form.get("new_key") in ("1", "on", "true")
        confirmed = str(form.get("confirm", ""))
        if not (confirmed.isascii() and confirmed.isdigit()) or int(confirmed) != len(records):
            changed = (confirmed.isascii() and confirmed.isdigit()) and int(confirmed) != len(records)
            return c.page(
                "confirm.html",
                operator=operator,
                action=action,
                count=len(records),
                previous=int(confirmed) if changed else None,
                filters=c.filter_text(form),
                resolved=f,
                new_key=new_key,
                codes=sorted({r.error_code for r in records}),
            )
        result = await run_in_threadpool(
            lambda: views.bulk(c.rt, records, action, new_key=new_key, actor=operator.name)
        )
        log.info("console bulk action", user=operator.name, action=action, count=result.done)
        verb = "replayed" if action == "replay" else "dropped"
        notice = f"{verb} {result.done} dead letter(s)" + (
            f"; {len(result.skipped)} skipped: " + " | ".join(result.skipped[:3]) if result.skipped else ""
        )
        query = {k: v for k, v in c.filter_text(form).items() if v}
        query["notice"] = notice
        return RedirectResponse(f"/console/dead-letters?{urlencode(query)}", status_code=303, headers=HEADERS)


def _mapping_routes(router: APIRouter, c: Console) -> None:
    """Unmapped POS ids and the mapping import."""

    @router.get("/mappings")
    async def mappings(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        rows = await run_in_threadpool(views.unmapped, c.rt)
        return c.page("mappings.html", operator=operator, rows=rows, result=None, now=now_ms())

    @router.post("/mappings/import")
    async def mappings_import(request: Request) -> Response:
        operator = await c.operator_of(request)
        if operator is None:
            return c.to_login()
        try:
            form = await c.read_form(request, operator, MAX_UPLOAD_BYTES)
            data = form.get("file")
            if not isinstance(data, bytes) or not data.strip():
                raise Refused(400, "file: choose a CSV file to import")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise Refused(400, "file: the CSV is not UTF-8") from None
        except Refused as exc:
            return c.refused(exc, operator)
        result = await run_in_threadpool(
            lambda: views.import_mappings(c.rt, text, actor=operator.name, allowed=operator.businesses)
        )
        log.info("console mapping import", user=operator.name, ok=result.ok, rows=result.rows)
        rows = await run_in_threadpool(views.unmapped, c.rt)
        return c.page(
            "mappings.html", 200 if result.ok else 400, operator=operator, rows=rows, result=result, now=now_ms()
        )


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
