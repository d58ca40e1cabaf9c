"""The sandbox ASGI application: ``/v1/partner/...`` -> partner pipeline, ``/_sandbox/...`` -> admin API,
anything else -> 404 ``resource_not_found`` in the envelope.
"""

from __future__ import annotations

from devstack.sandbox.admin import build_admin
from devstack.sandbox.asgi_io import Receive, Scope, Send, send_json
from devstack.sandbox.config import SandboxConfig
from devstack.sandbox.envelope import error_body, new_request_id
from devstack.sandbox.partner import handle_partner
from devstack.sandbox.routes import PREFIX
from devstack.sandbox.state import SandboxState


class SandboxApp:
    """An ASGI app over one ``SandboxState``."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.state = SandboxState(config or SandboxConfig())
        self.admin = build_admin(self.state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await handle_partner(self.state, scope, receive, send)
        elif path.startswith("/_sandbox/"):
            await self.admin(scope, receive, send)
        else:
            body = error_body(new_request_id(), "resource_not_found", f"no route {scope['method']} {path}")
            await send_json(send, 404, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    return SandboxApp(config)
