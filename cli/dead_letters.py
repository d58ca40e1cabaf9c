"""``menusync dlq ...`` and ``menusync credentials ...``: look at, replay and drop dead letters.

menusync dlq list [--business B] [--code C] [--limit N]   open dead letters, and a count per code
menusync dlq show ID                                       one record (also a replayed one, for 7 days)
menusync dlq replay ID [--new-key]                         put its targets back and nudge the flush
menusync dlq drop ID                                       forget it (its targets stay as they are)
menusync credentials clear BUSINESS                        lift the auth block after fixing the key

Replay, by kind of record:

- a write (``call`` with targets, also ``unplannable`` / ``credentials_missing``): the targets go back
  to pending with ``Ledger.unblock`` (a target that a newer change has moved on is left alone: newer
  wins) and the business's flush is nudged. ``--new-key`` bumps each target's replay nonce, so the
  next write carries a new ``Idempotency-Key``. A ``state_idempotency_conflict`` (409: klikit holds
  a *different* request under that key) can only be replayed with ``--new-key``; without it the
  command says so and exits 2. Without ``--new-key`` klikit answers a replay of a key it already
  applied from its idempotency cache, so the same write never applies twice.
- a publish: the stores it named are marked touched again (a new publish generation, hence a new
  key) and a publish is scheduled.
- a ``message`` record (a message Dramatiq could not process): the business is nudged (flush) or a
  publish is sent, whichever actor the message was for.

A replayed record leaves the open list and the per-code counts, and stays readable with
``dlq show`` for 7 days with ``replayed_at_ms`` set. ``drop`` removes it outright; its targets
stay set aside until a newer change for them arrives.

The rules live in :mod:`workers.dlq_actions`, shared with the console; both append the replay or
drop to the change history with who did it.

Nothing here prints a secret: records hold klikit request bodies and scrubbed reasons only.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.status import ago
from workers import dlq_actions
from workers.clock import now_ms
from workers.credential_block import auth_block_key
from workers.deadletters import DeadLetter
from workers.dlq_actions import CONFLICT, REPLAYED_KEEP_S
from workers.runtime import Runtime, runtime

dlq_app = typer.Typer(help="Dead letters: list, show, replay, drop.", no_args_is_help=True)
credentials_app = typer.Typer(help="klikit credential health.", no_args_is_help=True)

__all__ = ["CONFLICT", "REPLAYED_KEEP_S", "credentials_app", "dlq_app"]
#: Exit code of a refused replay (a conflict without --new-key).
EXIT_NEEDS_NEW_KEY = 2


def _console() -> Console:
    return Console(soft_wrap=False, width=200)


def _get(rt: Runtime, dead_letter_id: str) -> DeadLetter:
    record = rt.dead_letters.get(dead_letter_id)
    if record is None:
        _console().print(f"[red]no dead letter {dead_letter_id!r}[/red]")
        raise typer.Exit(code=1)
    return record


def _status(record: DeadLetter) -> str:
    return "replayed" if record.replayed_at_ms else "open"


@dlq_app.command("list")
def list_command(
    business: Annotated[int | None, typer.Option("--business", "-b", help="Only this business.")] = None,
    code: Annotated[str | None, typer.Option("--code", help="Only this error code.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: counts by code and the records.")] = False,
) -> None:
    """Open dead letters, newest first, with a count per error code."""
    rt = runtime()
    console = _console()
    counts = rt.dead_letters.counts_by_code(business)
    if as_json:
        records = [r for r in rt.dead_letters.list(business, limit=limit) if code is None or r.error_code == code]
        typer.echo(json.dumps({"counts": counts, "records": [r.model_dump() for r in records]}, indent=2))
        return
    summary = Table(title="dead letters by code" + (f" (business {business})" if business is not None else ""))
    summary.add_column("code")
    summary.add_column("count", justify="right")
    for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        summary.add_row(name, str(n))
    summary.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    console.print(summary)
    records = [r for r in rt.dead_letters.list(business, limit=limit) if code is None or r.error_code == code]
    if not records:
        console.print("no open dead letters")
        return
    table = Table(title=f"open dead letters (newest {len(records)})")
    for column in ("id", "business", "code", "http", "operation", "targets", "attempts", "last failure", "reason"):
        table.add_column(column, overflow="fold")
    now = now_ms()
    for r in records:
        table.add_row(
            r.id,
            str(r.business_id or "-"),
            r.error_code,
            str(r.http_status or "-"),
            r.operation or r.actor or r.kind,
            str(len(r.targets)),
            str(r.attempts),
            f"{ago(now - r.last_failure_ms)} ago",
            r.reason[:60],
        )
    console.print(table)


@dlq_app.command("show")
def show_command(dead_letter_id: Annotated[str, typer.Argument(help="Dead-letter id (dl-...).")]) -> None:
    """Everything recorded about one dead letter (JSON)."""
    record = _get(runtime(), dead_letter_id)
    payload = record.model_dump()
    payload["status"] = _status(record)
    typer.echo(json.dumps(payload, indent=2, default=str))


@dlq_app.command("replay")
def replay_command(
    dead_letter_id: Annotated[str, typer.Argument(help="Dead-letter id (dl-...).")],
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Send the write under a new Idempotency-Key (required after a 409).")
    ] = False,
) -> None:
    """Put a dead letter's work back into the pipeline, then mark it replayed."""
    rt = runtime()
    console = _console()
    record = _get(rt, dead_letter_id)
    result = dlq_actions.replay(rt, record, new_key=new_key, actor=_os_user(), source="cli")
    if not result.ok:
        style = "yellow" if result.status == "not_open" else "red"
        console.print(f"[{style}]{result.message}[/{style}]")
        raise typer.Exit(code=EXIT_NEEDS_NEW_KEY if result.status == "needs_new_key" else 1)
    console.print(result.message)
    for warning in result.warnings:
        console.print(f"[yellow]{warning}[/yellow]")


@dlq_app.command("drop")
def drop_command(dead_letter_id: Annotated[str, typer.Argument(help="Dead-letter id (dl-...).")]) -> None:
    """Forget a dead letter. Its targets stay set aside until a newer change for them arrives."""
    rt = runtime()
    record = _get(rt, dead_letter_id)
    result = dlq_actions.drop(rt, record, actor=_os_user(), source="cli")
    if not result.ok:
        _console().print(f"[yellow]{result.message}[/yellow]")
        raise typer.Exit(code=1)
    _console().print(result.message)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return ""


@credentials_app.command("clear")
def clear_command(business: Annotated[int, typer.Argument(help="klikit business id.")]) -> None:
    """Lift the auth block of a business (after fixing its key) and nudge its flush."""
    from workers import actors

    rt = runtime()
    # Workers re-read the credentials file before their next flush or publish: a rotated key is used at once.
    rt.redis.incr(rt.keys.credentials_generation())
    key = auth_block_key(rt, business)
    code = rt.redis.get(key)
    if not code:
        _console().print(f"business {business}: credential not blocked; workers re-read the credentials file")
        return
    rt.redis.delete(key)
    actors.nudge([business])
    _console().print(
        f"business {business}: auth block ({code}) cleared; flush nudged. Its auth dead letters stay open: "
        "replay them with `menusync dlq replay ID`."
    )


@credentials_app.command("status")
def credentials_status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Credential health of every business the ledger knows."""
    rt = runtime()
    table = Table(title="credentials")
    table.add_column("business")
    table.add_column("configured")
    table.add_column("health")
    configured: set[int] = set()
    try:
        configured = set(rt.credentials.businesses())
    except Exception as exc:
        _console().print(f"[yellow]credentials file not readable: {exc}[/yellow]")
    rows = []
    for b in sorted(set(rt.ledger.businesses()) | configured):
        blocked = rt.redis.get(auth_block_key(rt, b))
        rows.append({"business_id": b, "configured": b in configured, "blocked": blocked or None})
        table.add_row(
            str(b), "yes" if b in configured else "[red]no[/red]", f"[red]blocked: {blocked}[/red]" if blocked else "ok"
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _console().print(table)
