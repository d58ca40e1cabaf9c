"""The operator console (``/console``) and the history API, mounted on the receiver's app.

``mount_console(app, receiver)`` adds both; see :mod:`producers.console.routes` (pages),
:mod:`producers.console.auth` (logins, CSRF), :mod:`producers.console.views` (what the pages show)
and :mod:`producers.console.api` (``GET /v1/businesses/{id}/history``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from producers.app import Receiver


def mount_console(app: FastAPI, receiver: Receiver) -> None:
    from producers.console.api import build_api_router
    from producers.console.auth import Sessions
    from producers.console.routes import build_router

    sessions = Sessions(receiver.client, receiver.keys, receiver.settings)
    app.include_router(build_api_router(receiver.client, receiver.keys, sessions.grants))
    app.include_router(build_router(receiver.runtime, sessions, receiver.known))
