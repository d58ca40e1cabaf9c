"""Run the receiver under uvicorn: ``python -m producers.web [--host H] [--port P] [--workers N]``."""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI

from config.logging import configure_logging
from config.settings import get_settings
from producers.app import create_app
from workers.key_migration import refuse_legacy_layout


def app_factory() -> FastAPI:
    """The app from the environment's settings (uvicorn ``--factory`` entry point)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    receiver = app.state.receiver
    refuse_legacy_layout(receiver.client, receiver.keys)
    # What start-up built (modules, the app, its settings) lives as long as the process: kept out
    # of the collector's view, a full collection only walks what requests left behind. Under load
    # the full collections of that heap were the largest single cost of a request (tens of ms each,
    # every half second or so, stalling every request in flight).
    gc.collect()
    gc.freeze()
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m producers.web", description="The webhook receiver.")
    parser.add_argument("--host", default=os.environ.get("MENUSYNC_WEB_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", os.environ.get("MENUSYNC_WEB_PORT", "8000")))
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="warning", help="uvicorn's own log level")
    args = parser.parse_args(argv)
    uvicorn.run(
        "producers.web:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
