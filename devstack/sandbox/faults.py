"""Fault injection state: the current fault configuration, its random draws, and scripted responses.

Per partner call, ``plan`` draws which faults hit it (when ``writes_only`` is set, reads are never
hit). Scripts queue canned responses for a method and path (optionally one business); the next
matching calls get them in order without touching the model.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from devstack.sandbox.config import FaultConfig


@dataclass(frozen=True)
class FaultPlan:
    latency_s: float = 0.0
    hang_s: float = 0.0
    downstream: bool = False
    drop: str | None = None


NO_FAULTS = FaultPlan()


@dataclass(frozen=True)
class ScriptedResponse:
    """A canned answer. ``drop`` closes the connection instead; 2xx answers carry ``data``."""

    status: int
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    data: Any = None
    drop: bool = False

    @staticmethod
    def parse(raw: Any, index: int) -> ScriptedResponse:
        if not isinstance(raw, dict):
            raise ValueError(f"responses[{index}] must be an object")
        drop = raw.get("drop", False)
        if not isinstance(drop, bool):
            raise ValueError(f"responses[{index}].drop must be a boolean")
        status = raw.get("status", 200 if drop else None)
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise ValueError(f"responses[{index}].status must be an HTTP status 200..599")
        code = raw.get("code")
        if code is not None and not isinstance(code, str):
            raise ValueError(f"responses[{index}].code must be a string")
        if status >= 300 and code is None and not drop:
            raise ValueError(f"responses[{index}].code is required for an error status")
        message = raw.get("message")
        if message is not None and not isinstance(message, str):
            raise ValueError(f"responses[{index}].message must be a string")
        retry_after = raw.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or isinstance(retry_after, bool)):
            raise ValueError(f"responses[{index}].retry_after must be an integer or null")
        return ScriptedResponse(status, code, message, retry_after, raw.get("data"), drop)


@dataclass
class Script:
    method: str
    path: str
    business_id: int | None
    responses: deque[ScriptedResponse] = field(default_factory=deque)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "business_id": self.business_id,
            "remaining": len(self.responses),
        }


class FaultState:
    """Current faults (start-up config until changed) and pending scripts."""

    def __init__(self, startup: FaultConfig) -> None:
        self.startup = startup
        self.config = startup
        self.rng = random.Random(startup.seed)
        self.scripts: list[Script] = []

    def set(self, config: FaultConfig) -> None:
        """Replace the config; when it has a seed the random sequence restarts from that seed."""
        if config.seed != self.config.seed or config.seed is not None:
            self.rng = random.Random(config.seed)
        self.config = config

    def restore(self) -> None:
        """Back to the start-up faults, no scripts."""
        self.config = self.startup
        self.rng = random.Random(self.startup.seed)
        self.scripts.clear()

    def applies(self, is_write: bool) -> bool:
        return is_write or not self.config.writes_only

    def plan(self, is_write: bool) -> FaultPlan:
        cfg = self.config
        if not self.applies(is_write):
            return NO_FAULTS
        rng = self.rng
        hang = cfg.hang_s if cfg.hang_rate > 0 and rng.random() < cfg.hang_rate else 0.0
        downstream = cfg.downstream_rate > 0 and rng.random() < cfg.downstream_rate
        drop = cfg.drop_phase if cfg.drop_rate > 0 and rng.random() < cfg.drop_rate else None
        if not (hang or downstream or drop or cfg.latency_ms):
            return NO_FAULTS
        return FaultPlan(cfg.latency_ms / 1000.0, hang, downstream, drop)

    def add_script(self, script: Script) -> None:
        self.scripts.append(script)

    def next_scripted(self, method: str, path: str, business_id: int | None) -> ScriptedResponse | None:
        for script in self.scripts:
            if script.method != method or script.path != path:
                continue
            if script.business_id is not None and script.business_id != business_id:
                continue
            if script.responses:
                response = script.responses.popleft()
                if not script.responses:
                    self.scripts.remove(script)
                return response
        return None
