"""``menusync migrate-keys``: move a deployment's keys from before the cluster layout (dry run first)."""

from __future__ import annotations

from typing import Annotated

import typer

from workers.key_migration import migrate_keys
from workers.runtime import runtime


def migrate_keys_command(
    apply: Annotated[bool, typer.Option("--apply", help="Move the keys (without it: only count them).")] = False,
) -> None:
    """Move keys from the layout before Redis Cluster support to the sharded one. Stop menusync first."""
    rt = runtime()
    counts = migrate_keys(rt.redis, rt.keys, apply=apply)
    verb = "moved" if apply else "would move"
    if not counts:
        typer.echo("nothing to migrate: every key is in the current layout")
        return
    for family, count in counts.items():
        typer.echo(f"{verb} {count:>8} {family}")
    if not apply:
        typer.echo("dry run: stop menusync, then run `menusync migrate-keys --apply`")
