"""What the console pages show, as plain functions of the runtime (no HTTP here).

The overview's red cells follow the alerts of ``docs/metrics.md``: a dead letter in the last
15 minutes (dead letters rising), the oldest pending change older than 2 minutes, a publish
overdue by more than a minute or dead-lettered (publish lag), a blocked credential, drift at the
last read-back (persistent, or more than 10 targets) and a read-back older than twice
``MENUSYNC_RECONCILE_INTERVAL_S`` (read-back stale).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from producers.mapping import MappingImportError, Mappings, parse_csv
from producers.review import list_review
from workers import dlq_actions, history
from workers.changes import Target
from workers.clock import now_ms
from workers.deadletters import DeadLetter
from workers.runtime import Runtime
from workers.status import STATUS_PAGE_SIZE, BusinessStatus, Page, business_statuses, page_of

PENDING_ALERT_MS = 120_000
PUBLISH_LAG_ALERT_MS = 60_000
DEAD_LETTER_WINDOW_MS = 15 * 60_000
DRIFT_ALERT_TARGETS = 10
PAGE_CODES = ("auth_", "state_idempotency_conflict")


@dataclass
class Cell:
    text: str
    alert: bool = False
    warn: bool = False
    at_ms: int | None = None
    """When set, the cell shows "3 min ago" with the exact time on hover."""
    title: str = ""


@dataclass
class OverviewRow:
    business_id: int
    cells: dict[str, Cell]
    alerts: list[str] = field(default_factory=list)


COLUMNS = (
    ("pending", "pending"),
    ("oldest", "oldest pending"),
    ("publish", "last publish"),
    ("due", "publish due"),
    ("dead", "dead letters"),
    ("credential", "credential"),
    ("drift", "drift (last read-back)"),
)


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = abs(ms) / 1000
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def businesses_for(rt: Runtime, allowed: frozenset[int] | None, known: frozenset[int] = frozenset()) -> list[int]:
    ids = set(rt.ledger.businesses()) | set(known)
    return sorted(b for b in ids if allowed is None or b in allowed)


def overview_row(rt: Runtime, b: BusinessStatus, now: int) -> OverviewRow:
    s = rt.settings
    cells: dict[str, Cell] = {}
    alerts: list[str] = []
    cells["pending"] = Cell(f"{b.pending}" + (" · flushing" if b.flushing else ""))
    old = b.oldest_pending_age_ms
    cells["oldest"] = Cell(duration(old), alert=old is not None and old > PENDING_ALERT_MS)
    if cells["oldest"].alert:
        alerts.append("oldest pending change too old")
    if b.last_publish_at_ms is None:
        cells["publish"] = Cell("never")
    else:
        failed = b.last_publish_outcome.startswith("dead")
        outcome = "failed: " + b.last_publish_outcome.split(": ", 1)[-1] if failed else "ok"
        cells["publish"] = Cell(outcome, alert=failed, at_ms=b.last_publish_at_ms)
        if failed:
            alerts.append("publish dead-lettered")
    due = b.publish_due_in_ms
    if due is None:
        cells["due"] = Cell("-")
    elif due >= 0:
        cells["due"] = Cell(f"in {duration(due)}")
    else:
        cells["due"] = Cell(f"overdue {duration(-due)}", alert=-due > PUBLISH_LAG_ALERT_MS, warn=True)
        if -due > PUBLISH_LAG_ALERT_MS:
            alerts.append("publish lag")
    if b.dead_letters:
        newest = rt.dead_letters.list(b.business_id, limit=1)
        recent = bool(newest) and now - newest[0].last_failure_ms < DEAD_LETTER_WINDOW_MS
        paging = any(code.startswith(PAGE_CODES) for code in b.dead_letters)
        text = ", ".join(f"{code} {n}" for code, n in sorted(b.dead_letters.items()))
        cells["dead"] = Cell(text, alert=recent or paging, warn=True)
        if recent or paging:
            alerts.append("dead letters rising")
    else:
        cells["dead"] = Cell("0")
    blocked = b.credential != "ok"
    cells["credential"] = Cell(b.credential, alert=blocked)
    if blocked:
        alerts.append("credential blocked")
    cells["drift"] = drift_cell(b.last_reconcile, now, s.reconcile_interval_s)
    if cells["drift"].alert:
        alerts.append("drift / read-back")
    return OverviewRow(b.business_id, cells, alerts)


def drift_cell(last: dict[str, str], now: int, interval_s: float) -> Cell:
    if not last.get("at_ms"):
        return Cell("never read back")
    at = int(last["at_ms"])
    stale = interval_s > 0 and now - at > 2 * interval_s * 1000
    drift, override = int(last.get("drift", 0)), int(last.get("store_override", 0))
    persistent = int(last.get("persistent", 0))
    parts = []
    if drift:
        parts.append(f"{drift} drift ({last.get('repaired', 0)} repaired)")
    if override:
        parts.append(f"{override} store override")
    if persistent:
        parts.append(f"{persistent} persistent")
    text = ", ".join(parts) or "none"
    alert = stale or persistent > 0 or drift > DRIFT_ALERT_TARGETS
    return Cell(text + (" · stale" if stale else ""), alert=alert, warn=bool(drift or override), at_ms=at)


def overview(
    rt: Runtime,
    allowed: frozenset[int] | None,
    known: frozenset[int] = frozenset(),
    *,
    after: int | None = None,
    limit: int = STATUS_PAGE_SIZE,
) -> tuple[list[OverviewRow], Page]:
    """One page of the overview (businesses by id after ``after``), read in one round trip."""
    now = now_ms()
    page = page_of(businesses_for(rt, allowed, known), after, limit)
    return [overview_row(rt, b, now) for b in business_statuses(rt, page.ids, now)], page


# -- business page ---------------------------------------------------------------------------------


def target_label(key: str) -> str:
    """``398|5297:1293|item|101|enabled`` -> ``item 101 @ 5297:1293 · enabled``."""
    try:
        t = Target.from_key(key)
    except (ValueError, TypeError):
        return key
    scope = t.store.key() if t.store else "business"
    field_name = t.field + (f" on channel {t.provider}" if t.provider is not None else "")
    return f"{t.level} {t.entity_id} @ {scope} · {field_name}"


def pending_rows(rt: Runtime, business_id: int, limit: int = 200) -> list[dict[str, Any]]:
    return [
        {
            "target": row.target.key(),
            "label": target_label(row.target.key()),
            "value": json.dumps(row.value, sort_keys=True)[:200],
            "since_ms": row.pending_since_ms,
            "change_id": row.change_id,
        }
        for row in rt.ledger.pending(business_id, limit=limit)
    ]


def target_state(rt: Runtime, business_id: int, matcher_text: str) -> list[dict[str, Any]]:
    """Current ledger state of the targets a search names (value, applied or not, pending, dead)."""
    match = history.target_matcher(matcher_text, business_id)
    out = []
    for key, state in sorted(rt.ledger.view(business_id).items()):
        if match(key):
            out.append(
                {
                    "target": key,
                    "label": target_label(key),
                    "value": json.dumps(state.value, sort_keys=True)[:200],
                    "settled": state.settled,
                    "pending": state.pending,
                    "dead": state.dead,
                    "version": state.version,
                }
            )
    return out[:50]


# -- dead letters ---------------------------------------------------------------------------------


def dead_letter_view(record: DeadLetter) -> dict[str, Any]:
    """Everything recorded about one dead letter, for display (bodies and scrubbed reasons: no secrets)."""
    data = record.model_dump()
    data["status"] = "replayed" if record.replayed_at_ms else "open"
    data["needs_new_key"] = dlq_actions.needs_new_key(record.error_code)
    data["body_text"] = json.dumps(record.body, indent=2, sort_keys=True) if record.body is not None else ""
    data["target_labels"] = [(t, v, target_label(t)) for t, v in record.targets]
    return data


@dataclass
class BulkResult:
    done: int = 0
    skipped: list[str] = field(default_factory=list)


def bulk(rt: Runtime, records: list[DeadLetter], action: str, *, new_key: bool, actor: str) -> BulkResult:
    result = BulkResult()
    for record in records:
        if action == "replay":
            outcome = dlq_actions.replay(rt, record, new_key=new_key, actor=actor, source="console")
        else:
            outcome = dlq_actions.drop(rt, record, actor=actor, source="console")
        if outcome.ok:
            result.done += 1
        else:
            result.skipped.append(outcome.message)
    return result


# -- mappings -------------------------------------------------------------------------------------


def unmapped(rt: Runtime, limit: int = 100) -> list[dict[str, Any]]:
    rows = list_review(rt.redis, rt.keys, count=limit, kind="unmapped")
    return [
        {
            "id": entry_id,
            "at_ms": int(entry_id.split("-", 1)[0]),
            "source": f.get("source", ""),
            "event_id": f.get("event_id", ""),
            "reason": f.get("reason", ""),
            "raw": f.get("raw", "")[:2000],
        }
        for entry_id, f in rows
    ]


@dataclass
class ImportResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0


def import_mappings(rt: Runtime, text: str, *, actor: str, allowed: frozenset[int] | None) -> ImportResult:
    """Check the whole file (every bad line reported), then import it all; history per business."""
    try:
        rows = parse_csv(text)
    except MappingImportError as exc:
        return ImportResult(False, errors=list(exc.errors))
    owner: dict[int, int] = {}
    for row in rows:
        ref = row.entity or row.store
        if ref is not None:
            owner[id(row)] = ref.business_id
    businesses = sorted(set(owner.values()))
    outside = [b for b in businesses if allowed is not None and b not in allowed]
    if outside:
        return ImportResult(False, errors=[f"business_id {b}: outside your scope" for b in outside])
    counts = Mappings(rt.redis, rt.keys).import_rows(rows)
    for b in businesses:
        n = sum(1 for row in rows if owner.get(id(row)) == b)
        history.append_outcomes(
            rt.redis,
            rt.keys,
            b,
            [("mappings", "")],
            "mappings_imported",
            max_entries=rt.settings.history_max_per_business,
            source="console",
            actor=actor,
            detail=f"{n} row(s) imported",
        )
    return ImportResult(True, counts=counts, rows=len(rows))
