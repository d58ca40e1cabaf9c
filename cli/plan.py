"""``menusync plan BUSINESS [--store B:BR] [--json]``: a dry run of the read-back.

Prints, target by target, what menusync wants against what klikit's published menus show,
and writes nothing (the reads come out of the credential's rate budget). Exit status: 0 when
every read target is ``ok``, pending or dead-lettered; 1 when some drift or store override
was found; 2 when klikit could not be read.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from klikit.errors import KlikitError
from workers.changes import Store
from workers.errors import FlushDeferred
from workers.plan import plan_business
from workers.runtime import runtime

EXIT_DIFFERS = 1
EXIT_UNREADABLE = 2

_STYLE = {"ok": "green", "drift": "red", "store_override": "yellow", "absent": "magenta", "pending": "cyan"}


def _show(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def plan_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    store: Annotated[list[str] | None, typer.Option("--store", help="Store brand:branch (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Desired against published, target by target; writes nothing."""
    store_keys = None
    if store:
        try:
            store_keys = [Store.from_key(s).key() for s in store]
        except ValueError:
            raise typer.BadParameter("--store must be brand:branch, e.g. 5297:1293") from None
    try:
        report = plan_business(runtime(), business, store_keys)
    except (KlikitError, FlushDeferred) as exc:
        typer.echo(f"klikit could not be read: {exc}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    counts = report.counts()
    if as_json:
        typer.echo(json.dumps({**asdict(report), "counts": counts}, indent=2, default=str))
    else:
        console = Console(soft_wrap=False)
        table = Table(title=f"business {business}: desired vs published ({len(report.stores_read)} stores read)")
        for column in ("target", "desired", "published", "verdict"):
            table.add_column(column)
        for row in report.rows:
            shown = ", ".join(f"{s} {_show(v)}" for s, v in row.published.items()) or "-"
            style = _STYLE.get(row.verdict, "")
            table.add_row(row.target, _show(row.desired), shown, f"[{style}]{row.verdict}[/]" if style else row.verdict)
        console.print(table)
        console.print(", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no targets")
        for key in report.unknown_stores:
            console.print(f"[yellow]klikit does not know store {key}[/]")
        for key, code in report.unreadable_stores.items():
            console.print(f"[yellow]store {key} could not be read: {code}[/]")
    if report.unreadable_stores:
        raise typer.Exit(EXIT_UNREADABLE)
    if counts.get("drift") or counts.get("store_override"):
        raise typer.Exit(EXIT_DIFFERS)
