"""``menusync status``: the status report (:mod:`workers.status`) as tables, JSON, or a live view."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from workers.runtime import runtime
from workers.status import STATUS_PAGE_MAX, STATUS_PAGE_SIZE, BusinessStatus, QueueStatus, StatusReport, collect

# -- rendering -------------------------------------------------------------------------------------


def ago(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _drift_cell(last: dict[str, str], now: int) -> str:
    if not last.get("at_ms"):
        return "never read back"
    when = f"{ago(now - int(last['at_ms']))} ago"
    drift, override = int(last.get("drift", 0)), int(last.get("store_override", 0))
    persistent = int(last.get("persistent", 0))
    if not (drift or override or persistent):
        return f"[green]none[/green] · {when}"
    parts = [f"{drift} drift ({last.get('repaired', 0)} repaired)"] if drift else []
    if override:
        parts.append(f"{override} store override")
    if persistent:
        parts.append(f"{persistent} persistent")
    return f"[{'red' if drift or persistent else 'yellow'}]{', '.join(parts)}[/] · {when}"


#: Narrower terminals than this get one block per business instead of the wide table.
WIDE_LAYOUT_COLUMNS = 150

_COLUMNS = (
    "business",
    "pending",
    "oldest pending",
    "applied",
    "recorded / superseded",
    "last publish",
    "publish due",
    "dead letters",
    "credential",
    "drift (last read-back)",
    "klikit",
)


def _cells(b: BusinessStatus, now: int) -> list[str]:
    """One business's values, in :data:`_COLUMNS` order, with alert colours."""
    oldest = ago(b.oldest_pending_age_ms)
    if b.oldest_pending_age_ms is not None and b.oldest_pending_age_ms > 30_000:
        oldest = f"[red]{oldest}[/red]"
    last = "never" if b.last_publish_at_ms is None else f"{ago(now - b.last_publish_at_ms)} ago"
    if b.last_publish_at_ms is not None:
        style = "red" if b.last_publish_outcome.startswith("dead") else "green"
        last += f" [{style}]{b.last_publish_outcome}[/{style}]"
    if b.publish_due_in_ms is None:
        due = "-"
    elif b.publish_due_in_ms >= 0:
        due = f"in {ago(b.publish_due_in_ms)}"
    else:
        due = f"[yellow]overdue {ago(-b.publish_due_in_ms)}[/yellow]"
    dead = ", ".join(f"{code} {n}" for code, n in sorted(b.dead_letters.items())) or "0"
    if b.dead_letters:
        dead = f"[red]{dead}[/red]"
    credential = b.credential if b.credential == "ok" else f"[red]{b.credential}[/red]"
    klikit = "ok" if b.klikit_outage_ms is None else f"[red]down {ago(b.klikit_outage_ms)}[/red]"
    return [
        str(b.business_id),
        f"{b.pending}{' (flushing)' if b.flushing else ''}",
        oldest,
        str(b.applied),
        f"{b.recorded} / {b.superseded}",
        last,
        due,
        dead,
        credential,
        _drift_cell(b.last_reconcile, now),
        klikit,
    ]


def _queue_cells(q: QueueStatus) -> list[str]:
    overdue = ago(q.oldest_delayed_overdue_ms)
    if q.oldest_delayed_overdue_ms and q.oldest_delayed_overdue_ms > 5_000:
        overdue = f"[red]{overdue}[/red]"
    return [
        q.queue,
        _num(q.ready),
        _num(q.in_flight),
        _num(q.delayed),
        ago(q.oldest_delayed_age_ms),
        overdue,
        _num(q.dead),
    ]


def page_line(report: StatusReport) -> str:
    """Which businesses the report shows, and how to ask for the next page."""
    shown, total = len(report.businesses), report.businesses_total
    if not shown:
        return f"no businesses on this page ({total:,} in all)"
    line = f"businesses {report.businesses[0].business_id}-{report.businesses[-1].business_id}: {shown:,} of {total:,}"
    if report.next_after is not None:
        line += f"; next page: menusync status --after {report.next_after}"
        if report.limit != STATUS_PAGE_SIZE:
            line += f" --limit {report.limit}"
    return line


def render(report: StatusReport, width: int = 200) -> Group:
    """The report for a terminal ``width`` columns wide: one wide table, or below
    :data:`WIDE_LAYOUT_COLUMNS` one block per business and a narrower queue table."""
    now = report.at_ms
    header = f"menusync status — redis {report.redis}, prefix {report.prefix}, broker {report.broker}"
    queue_columns = ("queue", "ready", "in flight", "delayed", "oldest delayed", "overdue", "dramatiq dead")
    if width >= WIDE_LAYOUT_COLUMNS:
        businesses = Table(title=header, expand=False)
        for column in _COLUMNS:
            businesses.add_column(column)
        for b in report.businesses:
            businesses.add_row(*_cells(b, now))
        if not report.businesses:
            businesses.add_row("(none yet)", *[""] * (len(_COLUMNS) - 1))
        queues = Table(title="queues", expand=False)
        for column in queue_columns:
            queues.add_column(column)
        for q in report.queues:
            queues.add_row(*_queue_cells(q))
        return Group(businesses, Text(page_line(report)), queues)
    parts: list[Any] = [Text(header, overflow="fold")]
    for b in report.businesses:
        block = Table(title=f"business {b.business_id}", show_header=False, expand=False, title_justify="left")
        block.add_column("what", style="bold", no_wrap=True)
        block.add_column("value", overflow="fold")
        for name, value in zip(_COLUMNS[1:], _cells(b, now)[1:], strict=True):
            block.add_row(name, value)
        parts.append(block)
    if not report.businesses:
        parts.append(Text("no business yet"))
    parts.append(Text(page_line(report)))
    queues = Table(title="queues", expand=False)
    kept = (0, 1, 2, 3, 5)  # queue, ready, in flight, delayed, overdue
    for i in kept:
        queues.add_column(queue_columns[i])
    for q in report.queues:
        cells = _queue_cells(q)
        queues.add_row(*[cells[i] for i in kept])
    parts.append(queues)
    return Group(*parts)


def status_command(
    business: Annotated[int | None, typer.Option("--business", "-b", help="Only this business.")] = None,
    after: Annotated[
        int | None, typer.Option(help="Start after this business id (the next page's id is printed).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=STATUS_PAGE_MAX, help="Businesses per page.")] = STATUS_PAGE_SIZE,
    every: Annotated[bool, typer.Option("--all", help="Every business, not one page (JSON exports).")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes with --watch.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per business (a page at a time, by id): pending and applied changes, publishes, dead letters,
    credential health; queue depths."""
    # A terminal's width (or COLUMNS) picks the layout; piped output gets the wide table.
    console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
    rt = runtime()

    def report() -> StatusReport:
        return collect(rt, business, after=after, limit=None if every else limit)

    if as_json:
        typer.echo(json.dumps(asdict(report()), indent=2))
        return
    if not watch:
        console.print(render(report(), console.width))
        return
    from rich.live import Live

    with Live(render(report(), console.width), console=console, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(max(0.2, interval))
                live.update(render(report(), console.width))
        except KeyboardInterrupt:
            pass
