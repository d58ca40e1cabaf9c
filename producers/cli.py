"""The ``menusync`` command line.

Each command group lives beside the code it drives and is mounted here:
``change`` and ``mappings`` (producers), ``dlq`` (workers), ``status``.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="menusync",
    help="Keep klikit menus in step with the kitchen: record changes, inspect and replay dead letters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
