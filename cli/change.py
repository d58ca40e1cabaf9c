"""``menusync change``: record one change from the command line (through the same intake).

Examples::

    menusync change --business 398 --level item --ids 101,102 --disable --store 5297:1293
    menusync change --business 398 --level item --ids 101 --disable --for-today
    menusync change --business 398 --level item --ids 101 --disable --until 2026-11-22T22:00:00Z
    menusync change --business 398 --level item --ids 101 --hide-on 6 --store 5297:1293
    menusync change --business 398 --level category --ids 7 --hide-on 6,11 --show-on 1
    menusync change --business 398 --level item --ids 101 --show-on 1 --replace
    menusync change --business 398 --level section --ids 3 \\
        --schedule '{"0": {"slots": [{"startTime": 700, "endTime": 1030}]}}'

No ``--store`` means business level. ``--for-today`` re-enables at the next local midnight
(``--tz`` names the zone). The change time is now unless ``--at`` gives one.

Visibility is per channel (klikit provider id: 1 klikit's own marketplace, 6 GrabFood, 9 GoFood,
11 ShopeeFood, ...): ``--hide-on`` and ``--show-on`` change only the channels they name, every
other channel stays as it is. ``--replace`` also hides every channel klikit lists that is not
named in ``--show-on``/``--hide-on``. ``--visibility 1=true,6=false`` is the same as
``--show-on 1 --hide-on 6``. A channel klikit does not list for the business is refused.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

from producers.canonical import ProviderLookup, batch_from_obj
from producers.webhooks import PayloadError
from workers.changes import Change
from workers.providers import KnownProviders, ProvidersUnavailable

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


def parse_channels(values: list[str], hint: str) -> list[str]:
    """Provider ids from repeatable, comma-separated ``--hide-on`` / ``--show-on`` values."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not (part.isascii() and part.isdigit()) or int(part) <= 0:
                raise typer.BadParameter(f"{part!r} is not a provider id (1 klikit, 6 GrabFood, ...)", param_hint=hint)
            out.append(str(int(part)))
    return out


def channel_map(visibility: str | None, hide_on: list[str], show_on: list[str]) -> dict[str, bool] | None:
    """The provider -> visible map of ``--visibility``, ``--hide-on`` and ``--show-on`` (None: none given)."""
    if visibility is None and not hide_on and not show_on:
        return None
    out = parse_visibility(visibility) if visibility is not None else {}
    for provider in parse_channels(show_on, "--show-on"):
        out[provider] = True
    for provider in parse_channels(hide_on, "--hide-on"):
        if out.get(provider) is True:
            raise typer.BadParameter(f"provider {provider} is both shown and hidden", param_hint="--hide-on")
        out[provider] = False
    return out


def describe_visibility(changes: list[Change], known: KnownProviders | None) -> list[str]:
    """What a visibility change does, per entity and scope, in an operator's words."""
    lines: list[str] = []
    groups: dict[tuple[str, int, str], dict[int, bool]] = {}
    for change in changes:
        target = change.target
        if target.provider is None:
            continue
        scope = f"at store {target.store.key()}" if target.store else "at every store (business level)"
        groups.setdefault((target.level, target.entity_id, scope), {})[target.provider] = bool(change.value)

    def label(p: int) -> str:
        return known.label(p) if known else f"provider {p}"

    for (level, entity, scope), flags in groups.items():
        parts = []
        shown = [label(p) for p, v in sorted(flags.items()) if v]
        hidden = [label(p) for p, v in sorted(flags.items()) if not v]
        if hidden:
            parts.append("hidden on " + ", ".join(hidden))
        if shown:
            parts.append("shown on " + ", ".join(shown))
        lines.append(f"{level} {entity} {scope}: " + "; ".join(parts))
    return lines


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
    hide_on: list[str] | None = None,
    show_on: list[str] | None = None,
    replace: bool = False,
    providers: ProviderLookup | None = None,
) -> list[Change]:
    channels = channel_map(visibility, hide_on or [], show_on or [])
    chosen = [enable is not None, channels is not None or replace, schedule is not None]
    if sum(chosen) != 1:
        raise typer.BadParameter("give exactly one of --enable, --disable, --hide-on/--show-on, --schedule")
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
    elif channels is not None or replace:
        body.update(kind="visibility", visibilities=channels or {}, replace=replace)
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
        return batch_from_obj({"business_id": business, "changes": [body]}, providers)
    except PayloadError as exc:
        raise typer.BadParameter(str(exc)) from None
    except ProvidersUnavailable as exc:
        raise typer.BadParameter(str(exc), param_hint="--replace") from None


@app.callback(invoke_without_command=True)
def change(
    business: Annotated[int, typer.Option("--business", "-b", help="klikit business id")],
    level: Annotated[str, typer.Option(help="section, category, item, modifier_group or modifier")],
    ids: Annotated[str, typer.Option(help="comma-separated klikit entity ids")],
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="availability")] = None,
    hide_on: Annotated[
        list[str] | None, typer.Option("--hide-on", help="hide on these channels (provider ids, e.g. 6 = GrabFood)")
    ] = None,
    show_on: Annotated[
        list[str] | None, typer.Option("--show-on", help="show on these channels (provider ids, e.g. 1 = klikit)")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="also hide on every channel not named (klikit's list)")
    ] = False,
    visibility: Annotated[
        str | None, typer.Option(help="PROVIDER=true|false,... (same as --show-on/--hide-on)")
    ] = None,
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
    from workers.runtime import runtime

    known: dict[int, KnownProviders] = {}

    def providers(business_id: int) -> KnownProviders:
        known[business_id] = runtime().known_providers(business_id)
        return known[business_id]

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
        hide_on=hide_on,
        show_on=show_on,
        replace=replace,
        providers=providers,
    )
    result = accept(changes, producer="cli", actor=_os_user())
    console.print(
        f"[bold]{result.accepted}[/bold] target(s) recorded, [bold]{result.superseded}[/bold] superseded "
        f"(change id {changes[0].id})"
    )
    for line in describe_visibility(changes, known.get(business)):
        console.print(line)
    if any(c.target.provider is not None for c in changes) and not replace:
        console.print("every other channel stays as it is")
    if changes[0].until_ms is not None:
        until_at = datetime.fromtimestamp(changes[0].until_ms / 1000, tz=UTC).isoformat()
        console.print(f"re-enable scheduled at {until_at}")


def _os_user() -> str:
    """Who ran the command (the change history names them)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return ""
