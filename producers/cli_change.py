"""``menusync change``: record one change from the command line (through the same intake).

Examples::

    menusync change --business 398 --level item --ids 101,102 --disable --store 5297:1293
    menusync change --business 398 --level item --ids 101 --disable --for-today
    menusync change --business 398 --level item --ids 101 --disable --until 2026-11-22T22:00:00Z
    menusync change --business 398 --level category --ids 7 --visibility 1=true,6=false
    menusync change --business 398 --level section --ids 3 \\
        --schedule '{"0": {"slots": [{"startTime": 700, "endTime": 1030}]}}'

No ``--store`` means business level. ``--for-today`` re-enables at the next local midnight
(``--tz`` names the zone). The change time is now unless ``--at`` gives one.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

from producers.canonical import batch_from_obj
from producers.webhooks import PayloadError
from workers.changes import Change

app = typer.Typer(help="Record a change (availability, visibility or schedule) for one business.")
console = Console()


def parse_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise typer.BadParameter(f"{part!r} is not an integer id", param_hint="--ids") from None
    if not ids:
        raise typer.BadParameter("give at least one id", param_hint="--ids")
    return ids


def parse_visibility(text: str) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        provider, sep, flag = part.partition("=")
        value = flag.strip().lower()
        if not sep or not provider.strip().isdigit() or value not in ("true", "false", "1", "0", "yes", "no"):
            raise typer.BadParameter(f"{part!r} is not PROVIDER=true|false", param_hint="--visibility")
        out[provider.strip()] = value in ("true", "1", "yes")
    if not out:
        raise typer.BadParameter("give at least one PROVIDER=true|false", param_hint="--visibility")
    return out


def parse_store(text: str) -> dict[str, int]:
    brand, sep, branch = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return {"brand_id": int(brand), "branch_id": int(branch)}
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not BRAND:BRANCH", param_hint="--store") from None


def parse_time(text: str, hint: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=hint) from None
    if when.tzinfo is None:
        raise typer.BadParameter("give a zone (Z or +hh:mm)", param_hint=hint)
    return when


def next_midnight(now: datetime, tz: str | None) -> datetime:
    """The next local midnight after ``now`` in zone ``tz`` (the system zone when None)."""
    if tz:
        try:
            zone: Any = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
    else:
        zone = now.astimezone().tzinfo
    local = now.astimezone(zone)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def build_changes(
    *,
    business: int,
    level: str,
    ids: str,
    enable: bool | None,
    visibility: str | None,
    schedule: str | None,
    stores: list[str],
    until: str | None,
    for_today: bool,
    tz: str | None,
    change_id: str | None,
    at: str | None,
    now: datetime | None = None,
) -> list[Change]:
    chosen = [enable is not None, visibility is not None, schedule is not None]
    if sum(chosen) != 1:
        raise typer.BadParameter("give exactly one of --enable, --disable, --visibility, --schedule")
    if until and for_today:
        raise typer.BadParameter("give --until or --for-today, not both")
    now = now or datetime.now(UTC)
    body: dict[str, Any] = {
        "id": change_id or f"cli:{uuid.uuid4().hex[:12]}",
        "level": level,
        "entity_ids": parse_ids(ids),
        "occurred_at": (parse_time(at, "--at") if at else now).isoformat(),
    }
    if enable is not None:
        body.update(kind="availability", enabled=enable)
    elif visibility is not None:
        body.update(kind="visibility", visibilities=parse_visibility(visibility))
    else:
        try:
            body.update(kind="schedule", available_times=json.loads(schedule or ""))
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--schedule") from None
    if stores:
        body["stores"] = [parse_store(s) for s in stores]
    if until:
        body["until"] = parse_time(until, "--until").isoformat()
    elif for_today:
        body["until"] = next_midnight(now, tz).isoformat()
    try:
        return batch_from_obj({"business_id": business, "changes": [body]})
    except PayloadError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback(invoke_without_command=True)
def change(
    business: Annotated[int, typer.Option("--business", "-b", help="klikit business id")],
    level: Annotated[str, typer.Option(help="section, category, item, modifier_group or modifier")],
    ids: Annotated[str, typer.Option(help="comma-separated klikit entity ids")],
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="availability")] = None,
    visibility: Annotated[str | None, typer.Option(help="PROVIDER=true|false,... (per channel)")] = None,
    schedule: Annotated[str | None, typer.Option(help="available_times JSON (sections)")] = None,
    store: Annotated[list[str] | None, typer.Option(help="BRAND:BRANCH (repeatable); none = business level")] = None,
    until: Annotated[str | None, typer.Option(help="re-enable at this ISO time")] = None,
    for_today: Annotated[bool, typer.Option("--for-today", help="re-enable at the next local midnight")] = False,
    tz: Annotated[str | None, typer.Option(help="zone for --for-today (default: system)")] = None,
    change_id: Annotated[str | None, typer.Option("--id", help="change id (default: cli:<random>)")] = None,
    at: Annotated[str | None, typer.Option(help="event time, ISO (default: now)")] = None,
) -> None:
    """Record the change in the ledger; the flush actors apply it to klikit."""
    from producers.intake import accept

    changes = build_changes(
        business=business,
        level=level,
        ids=ids,
        enable=enable,
        visibility=visibility,
        schedule=schedule,
        stores=store or [],
        until=until,
        for_today=for_today,
        tz=tz,
        change_id=change_id,
        at=at,
    )
    result = accept(changes, producer="cli")
    console.print(
        f"[bold]{result.accepted}[/bold] target(s) recorded, [bold]{result.superseded}[/bold] superseded "
        f"(change id {changes[0].id})"
    )
    if changes[0].until_ms is not None:
        until_at = datetime.fromtimestamp(changes[0].until_ms / 1000, tz=UTC).isoformat()
        console.print(f"re-enable scheduled at {until_at}")
