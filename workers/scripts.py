"""The Lua scripts menusync keeps its Redis state honest with, loaded once per client."""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script


@cache
def _source(name: str) -> str:
    return resources.files("workers").joinpath("lua", f"{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script:
    """The registered script ``workers/lua/<name>.lua`` for ``client`` (EVALSHA with fallback)."""
    cached: dict[str, Script] = client.__dict__.setdefault("_menusync_scripts", {})
    if name not in cached:
        cached[name] = client.register_script(_source(name))
    return cached[name]
