"""``menusync history BUSINESS [--target item:101@5297:1293] [--since 2h] [--json]``: the change history.

Newest first: every change menusync received for the business (who, from where, event and receive
time, recorded / superseded / duplicate) and what became of it (applied with klikit's request_id,
dead-lettered, drift repaired, replayed, dropped). The store is described in ``workers.history``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from config.redis import Keys
from config.settings import get_settings
from producers.runtime import shared_client
from workers.history import FilterError, parse_since, read_history


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def history_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="level:entity[@brand:branch], e.g. item:101@5297:1293.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="2h, 30m, 7d, epoch ms or ISO 8601.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source or actor.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="Only this outcome (applied, ...).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, newest first.")] = False,
) -> None:
    """Who changed what, when, from where, and what became of it (newest first)."""
    settings = get_settings()
    client = shared_client(settings.redis_url)
    try:
        since_ms = parse_since(since) if since else None
        entries, _ = read_history(
            client,
            Keys(settings.prefix),
            business,
            target=target,
            source=source,
            outcome=outcome,
            since_ms=since_ms,
            limit=limit,
        )
    except FilterError as exc:
        typer.echo(f"--{exc.field}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry.as_dict(), separators=(",", ":")))
        return
    table = Table(title=f"business {business}: history, newest first ({len(entries)})")
    for column in ("at (UTC)", "target", "value", "source", "by", "change id", "event time", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        detail = " ".join(p for p in (e.detail, e.request_id and f"request {e.request_id}") if p)
        table.add_row(
            _when(e.at_ms),
            e.target,
            e.value[:40],
            e.source,
            e.actor,
            e.change_id,
            _when(e.event_ms),
            e.outcome,
            detail,
        )
    Console(width=220).print(table)
