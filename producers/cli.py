"""The ``menusync`` command line.

Each command group lives beside the code it drives and is mounted here:
``change``, ``mappings``, ``stores``, ``items`` and ``audit`` (producers), ``dlq``, ``plan`` and
``status`` (workers).
"""

from __future__ import annotations

from pathlib import Path

import typer

from config.logging import configure_logging
from config.settings import get_settings
from producers import cli_change, cli_history, cli_mappings, cli_operations
from producers.cli_env import ROOT, load_cli_env
from workers import cli_ops, cli_plan, status

app = typer.Typer(
    name="menusync",
    help="Keep klikit menus in step with the kitchen: record changes, inspect and replay dead letters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(cli_change.app, name="change")
app.add_typer(cli_mappings.app, name="mappings")
app.command("status")(status.status_command)
app.command("plan")(cli_plan.plan_command)
app.command("history")(cli_history.history_command)
app.add_typer(cli_ops.dlq_app, name="dlq")
app.add_typer(cli_ops.credentials_app, name="credentials")
app.add_typer(cli_operations.stores_app, name="stores")
app.add_typer(cli_operations.items_app, name="items")
app.command("audit")(cli_operations.audit_command)


def main() -> None:
    # Without a Redis configured, reach the dev stack `make run` started (var/menusync.env).
    load_cli_env([Path.cwd(), ROOT])
    # Log lines go to stderr, so that --json output on stdout stays parseable.
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app()


if __name__ == "__main__":
    main()
