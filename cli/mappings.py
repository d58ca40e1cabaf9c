"""``menusync mappings``: import and sync POS id mappings, review unmapped and invalid events.

menusync mappings import FILE.csv      (format: see producers.mapping)
menusync mappings sync BUSINESS        (SKU index from the business's klikit menu)
menusync mappings list                 (every stored mapping)
menusync mappings unmapped [--kind unmapped|invalid] [--limit N]
menusync mappings show-unmapped ENTRY_ID
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from config.redis import Keys
from config.settings import get_settings
from producers.mapping import MappingImportError, Mappings, parse_csv, sku_index_from_menu
from producers.review import get_review, list_review
from producers.runtime import shared_client

app = typer.Typer(help="POS id mappings and the events that had none.", no_args_is_help=True)
console = Console()


def _mappings() -> Mappings:
    settings = get_settings()
    return Mappings(shared_client(settings.redis_url), Keys(settings.prefix))


@app.command("import")
def import_file(path: Annotated[Path, typer.Argument(help="CSV file", exists=True, dir_okay=False)]) -> None:
    """Import entity and location mappings from a CSV file (all or nothing)."""
    try:
        rows = parse_csv(path.read_text(encoding="utf-8-sig"))
    except MappingImportError as exc:
        for line in exc.errors:
            console.print(f"[red]{path}: {line}[/red]", soft_wrap=True)
        raise typer.Exit(code=2) from None
    counts = _mappings().import_rows(rows)
    console.print(
        f"imported {len(rows)} row(s): {counts['entity']} entity id(s), {counts['location']} location id(s), "
        f"{counts['sku']} SKU(s)"
    )


def fetch_menu(business: int) -> Any:
    """The business-mode menu of ``business`` from klikit (the live call; kept thin)."""
    from config.credentials import Credentials
    from klikit.client import KlikitClient

    settings = get_settings()
    credential = Credentials.load(settings.credentials_file).get(business)
    with KlikitClient.from_settings(settings, credential) as client:
        return client.get_menu().data


@app.command("sync")
def sync(business: Annotated[int, typer.Argument(help="klikit business id")]) -> None:
    """Rebuild the SKU index of BUSINESS from its klikit menu (items, modifiers... that carry a sku)."""
    try:
        menu = fetch_menu(business)
    except Exception as exc:
        console.print(f"[red]could not read the menu of business {business}: {exc}[/red]")
        raise typer.Exit(code=1) from None
    index = sku_index_from_menu(menu)
    count = _mappings().replace_sku_index(business, index)
    console.print(f"business {business}: {count} SKU(s) indexed")


@app.command("list")
def list_mappings(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every stored mapping."""
    rows = list(_mappings().iter_mappings())
    if as_json:
        keys = ("kind", "source", "pos_id", "klikit")
        typer.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return
    table = Table("kind", "source / business", "pos id / sku", "klikit")
    for kind, source, pos_id, value in rows:
        table.add_row(kind, source, pos_id, value)
    console.print(table)


@app.command("unmapped")
def unmapped(
    kind: Annotated[str | None, typer.Option(help="unmapped or invalid (default: both)")] = None,
    limit: Annotated[int, typer.Option(help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (without the raw bodies).")] = False,
) -> None:
    """Events kept for review: ids without mapping, entries that could not be parsed."""
    settings = get_settings()
    rows = list_review(shared_client(settings.redis_url), Keys(settings.prefix), count=limit, kind=kind)
    if as_json:
        typer.echo(json.dumps([{"entry": e, **{k: v for k, v in f.items() if k != "raw"}} for e, f in rows], indent=2))
        return
    table = Table("entry", "kind", "source", "event id", "reason")
    for entry_id, fields in rows:
        table.add_row(
            entry_id,
            fields.get("kind", ""),
            fields.get("source", ""),
            fields.get("event_id", ""),
            fields.get("reason", ""),
        )
    console.print(table)


@app.command("show-unmapped")
def show_unmapped(entry_id: Annotated[str, typer.Argument(help="entry id from `mappings unmapped`")]) -> None:
    """One kept event, with its raw body."""
    settings = get_settings()
    fields = get_review(shared_client(settings.redis_url), Keys(settings.prefix), entry_id)
    if fields is None:
        console.print(f"[red]no kept event {entry_id}[/red]")
        raise typer.Exit(code=1)
    for key in ("kind", "source", "event_id", "reason", "at_ms"):
        console.print(f"[bold]{key}[/bold]: {fields.get(key, '')}")
    console.print(fields.get("raw", ""), markup=False, highlight=False)
