"""``menusync stores ...``, ``menusync items ...`` and ``menusync audit``: the store and menu
operations of the klikit reference, made safe for operators (``workers.operations``).

menusync stores populate BUSINESS --store B:BR [--store ...] [--sections 6826,6827] [--request-id ID]
menusync stores reset BUSINESS [--store B:BR ...] (--confirm BUSINESS | --yes) [--reapply | --forget]
menusync items create BUSINESS --title en=Margherita --price 1:IDR:50000 [--sku S] [--visible 1,6]
                      [--vat 11] [--modifier --group 8001] [--request-id ID]
menusync items link BUSINESS --modifier-id ID --group 8001 --request-id ID
menusync audit [--business B] [--limit N] [--json]

Every command prints klikit's ``request_id`` and has ``--json``. Exit codes: 0 done; 1 klikit
refused or failed (its code is printed); 2 bad input or a refused confirmation (nothing was
called); 3 populate skipped at least one store (it has rows: use sync).
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from workers import operations as ops
from workers.changes import Store
from workers.runtime import runtime

stores_app = typer.Typer(help="Store operations: populate new stores, reset store overrides.", no_args_is_help=True)
items_app = typer.Typer(help="Menu items: create an item or a modifier option and link it.", no_args_is_help=True)

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_SKIPPED = 3


def _console() -> Console:
    return Console(soft_wrap=False, width=200, highlight=False)


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


def _emit(payload: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        console = _console()
        for line in lines:
            console.print(line)


def _refuse(message: str, as_json: bool, field: str | None = None) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": "refused", "field": field, "detail": message}))
    else:
        _console().print(f"[red]{message}[/red]")
    raise typer.Exit(code=EXIT_REFUSED)


def _failed(exc: ops.OperationFailed, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps(exc.to_json(), indent=2, default=str))
    else:
        console = _console()
        console.print(
            f"[red]{exc.step} failed: {exc.code} (HTTP {exc.status or '-'}) "
            f"request_id={exc.request_id or '-'}: {exc.message}[/red]"
        )
        if exc.done.get("created"):
            console.print(
                f"[yellow]the {exc.done['kind']} was created (id {exc.done['id']}, request_id "
                f"{exc.done['create_request_id']}) but is not linked to group {exc.done['group_id']}. "
                f"Finish with:[/yellow]\n  {exc.done['finish']}"
            )
    raise typer.Exit(code=EXIT_FAILED)


def _stores(values: list[str] | None, as_json: bool) -> list[Store]:
    try:
        return [ops.parse_store(v) for v in values or []]
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RequestIdOption = Annotated[
    str | None,
    typer.Option("--request-id", help="Idempotency: the same id never does the work twice (generated if absent)."),
]


@stores_app.command("populate")
def populate_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    store: Annotated[list[str], typer.Option("--store", help="Store BRAND:BRANCH (repeat for several).")],
    sections: Annotated[
        str | None, typer.Option("--sections", help="Section ids, comma-separated (default: every section).")
    ] = None,
    request_id: RequestIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """First-time push of the business menu to new stores. A store that has menu rows is skipped
    (klikit would skip it silently): it is reported, never claimed as populated."""
    stores = _stores(store, as_json)
    try:
        section_ids = ops.parse_int_list(sections, "--sections") if sections is not None else None
        result = ops.populate(runtime(), business, stores, sections=section_ids, request_id=request_id, who=_who())
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)
    except ops.OperationFailed as exc:
        _failed(exc, as_json)
    lines = [
        f"{row['store']}: populated" if row["outcome"] == "populated" else f"{row['store']}: skipped: {row['reason']}"
        for row in result["stores"]
    ]
    if result["populated"]:
        lines.append(
            f"klikit request_id {result['request_id']} (request id {result['operation_request_id']}); "
            "publish of the populated stores scheduled"
        )
    else:
        lines.append("nothing populated: no store was sent to klikit")
    _emit(result, as_json, lines)
    if result["skipped"]:
        raise typer.Exit(code=EXIT_SKIPPED)


@stores_app.command("reset")
def reset_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    store: Annotated[
        list[str] | None, typer.Option("--store", help="Store BRAND:BRANCH (repeat; default: every store).")
    ] = None,
    confirm: Annotated[
        int | None, typer.Option("--confirm", help="The business id again: confirms the destructive reset.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm without asking (scripts).")] = False,
    forget: Annotated[
        bool,
        typer.Option(
            "--forget/--reapply",
            help="After the reset: --reapply (default) writes menusync's own store overrides again; "
            "--forget drops them from the ledger (the business-level menu wins).",
        ),
    ] = False,
    request_id: RequestIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reset store overrides in klikit (destructive: every store-only edit is lost), then keep the
    ledger true: menusync's store-level targets are written again (--reapply) or forgotten (--forget)."""
    stores = _stores(store, as_json)
    rt = runtime()
    try:
        ops.check_request_id(request_id)
        preview = ops.reset_preview(rt, business, stores or None)
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)
    where = "every store" if preview["all_stores"] else ", ".join(preview["stores"])
    if not as_json:
        console = _console()
        console.print(
            f"[bold]reset store overrides of business {business} at {where}[/bold]: klikit drops every "
            "store-only edit there (menusync's and anyone else's)."
        )
        console.print(f"menusync holds {preview['count']} store-level target(s) there:")
        for key in preview["targets"][:20]:
            console.print(f"  {key}")
        if preview["count"] > 20:
            console.print(f"  ... and {preview['count'] - 20} more")
        console.print(
            "afterwards they are "
            + ("forgotten (the business-level menu wins)" if forget else "written again (--reapply)")
        )
    if confirm is not None and confirm != business:
        _refuse(f"--confirm {confirm} does not match business {business}: nothing reset", as_json, "--confirm")
    if confirm is None and not yes:
        if not sys.stdin.isatty():
            _refuse(
                "refusing to reset without a confirmation: pass --confirm BUSINESS or --yes (no terminal to ask)",
                as_json,
                "--confirm",
            )
        answer = typer.prompt(f"type the business id ({business}) to reset, anything else to stop", default="")
        if answer.strip() != str(business):
            _refuse("not confirmed: nothing reset", as_json, "--confirm")
    try:
        result = ops.reset(rt, business, stores or None, forget=forget, request_id=request_id, who=_who())
    except ops.OperationFailed as exc:
        _failed(exc, as_json)
    except ops.LeaseBusy as exc:
        _refuse(str(exc), as_json)
    done = result.get("repended", result.get("forgotten", 0))
    verb = "pending again under a new idempotency key" if not forget else "forgotten"
    lines = [
        f"reset done at {where}: klikit request_id {result['request_id']}",
        f"{done} store-level target(s) {verb}"
        + (
            f"; {result['left_dead_lettered']} dead-lettered target(s) left set aside"
            if result["left_dead_lettered"]
            else ""
        )
        + ("; flush nudged" if not forget and done else ""),
    ]
    _emit(result, as_json, lines)


@items_app.command("create")
def create_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    title: Annotated[list[str], typer.Option("--title", help="LANG=TEXT, ISO 639-1 code (repeat per language).")],
    price: Annotated[
        list[str],
        typer.Option("--price", help='PROVIDER:CURRENCY:PRICE[:TAKEAWAY] (repeat); provider "1" is required.'),
    ],
    sku: Annotated[str | None, typer.Option("--sku", help="Partner-side SKU (at most 50 characters).")] = None,
    visible: Annotated[str, typer.Option("--visible", help="Provider ids it is shown on, comma-separated.")] = "1",
    vat: Annotated[float, typer.Option("--vat", help="VAT percent (>= 0).")] = 0.0,
    description: Annotated[
        list[str] | None, typer.Option("--description", help="LANG=TEXT (repeat per language).")
    ] = None,
    modifier: Annotated[
        bool, typer.Option("--modifier", help="Create a modifier option (onlyModifier), linked into --group.")
    ] = False,
    group: Annotated[int | None, typer.Option("--group", help="Modifier group to link the option into.")] = None,
    request_id: RequestIdOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an item, or with --modifier --group a modifier option linked into that group."""
    fields = {"title": "--title", "prices": "--price", "vat": "--vat", "sku": "--sku", "visible": "--visible"}
    fields["description"] = "--description"
    try:
        if modifier != (group is not None):
            raise ops.InvalidInput("--group", "--modifier and --group go together")
        item = ops.build_item(
            title=ops.parse_locale_text(title, "--title"),
            prices=ops.parse_prices(price),
            vat=vat,
            sku=sku,
            visible=ops.parse_int_list(visible, "--visible"),
            description=ops.parse_locale_text(description, "--description") if description else None,
            only_modifier=modifier,
            fields=fields,
        )
        rid = ops.check_request_id(request_id)
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)
    if not as_json:
        _console().print(f"request id {rid} (run again with --request-id {rid}: never created twice)")
    try:
        result = ops.create_item(runtime(), business, item, group_id=group, request_id=rid, who=_who())
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)
    except ops.OperationFailed as exc:
        _failed(exc, as_json)
    lines = [f"created {result['kind']} {result['id']}: klikit request_id {result['request_id']}"]
    if result.get("linked"):
        lines.append(f"linked into group {group}: klikit request_id {result['link_request_id']}; publish scheduled")
    _emit(result, as_json, lines)


@items_app.command("link")
def link_command(
    business: Annotated[int, typer.Argument(help="klikit business id.")],
    modifier_id: Annotated[int, typer.Option("--modifier-id", help="The modifier option's id.")],
    group: Annotated[int, typer.Option("--group", help="The modifier group.")],
    request_id: Annotated[str, typer.Option("--request-id", help="The request id of the create.")],
    as_json: JsonOption = False,
) -> None:
    """Link a modifier option into a group (finishes a create whose link failed)."""
    try:
        rid = ops.check_request_id(request_id)
        response = ops.link(runtime(), business, modifier_id, group, request_id=rid, who=_who())
    except ops.InvalidInput as exc:
        _refuse(str(exc), as_json, exc.field)
    except ops.OperationFailed as exc:
        _failed(exc, as_json)
    result = {
        "ok": True,
        "operation": "link",
        "business_id": business,
        "modifier_id": modifier_id,
        "group_id": group,
        "request_id": response.request_id,
    }
    _emit(result, as_json, [f"linked {modifier_id} into group {group}: klikit request_id {response.request_id}"])


def audit_command(
    business: Annotated[int | None, typer.Option("--business", "-b", help="Only this business.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit trail of store and menu operations (populate, reset, create, link), newest first."""
    entries = ops.AuditLog(runtime()).entries(limit=limit, business_id=business)
    if as_json:
        typer.echo(json.dumps(entries, indent=2, default=str))
        return
    console = _console()
    if not entries:
        console.print("no operations recorded")
        return
    for e in entries:
        details = {k: v for k, v in e.items() if k not in ("id", "at_ms", "who", "operation", "business_id")}
        at = datetime.fromtimestamp(int(e.get("at_ms", 0)) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        console.print(
            f"{at}Z  {e.get('operation')}  business {e.get('business_id')}  by {e.get('who')}  "
            + "  ".join(f"{k}={json.dumps(v)}" for k, v in details.items())
        )
