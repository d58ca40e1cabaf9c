"""The ``menusync`` command line.

One typer app; each command group is a module of this package and stays thin: the logic it
drives lives in ``producers/`` (recording changes, mappings) and ``workers/`` (dead-letter
replay, status collection, store operations, planning).
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli import change, dead_letters, history, mappings, migrate, operations, plan, status
from cli.env import ROOT, load_cli_env
from config.logging import configure_logging
from config.settings import get_settings

app = typer.Typer(
    name="menusync",
    help="Keep klikit menus in step with the kitchen: record changes, inspect and replay dead letters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(change.app, name="change")
app.add_typer(mappings.app, name="mappings")
app.command("status")(status.status_command)
app.command("plan")(plan.plan_command)
app.command("history")(history.history_command)
app.add_typer(dead_letters.dlq_app, name="dlq")
app.add_typer(dead_letters.credentials_app, name="credentials")
app.add_typer(operations.stores_app, name="stores")
app.add_typer(operations.items_app, name="items")
app.command("audit")(operations.audit_command)
app.command("migrate-keys")(migrate.migrate_keys_command)


def main() -> None:
    # Without a Redis configured, reach the dev stack `make run` started (var/menusync.env).
    load_cli_env([Path.cwd(), ROOT])
    # Log lines go to stderr, so that --json output on stdout stays parseable.
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app()


if __name__ == "__main__":
    main()
