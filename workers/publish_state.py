"""Per-business publish debounce state in Redis, changed only through Lua scripts.

``publish:B`` hash: ``gen`` (from ``publish:generation:B``, bumped by every successful
write and never reset, so publish idempotency keys never repeat), ``first`` (first
unpublished write, ms), ``due`` (last write + quiet period), ``scheduled`` (a publish
message is pending). ``publish:stores:B`` set: stores touched (``*`` = all stores).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.redis import Keys
from workers.clock import now_ms
from workers.debounce import PublishState
from workers.scripts import script

ALL_STORES = "*"


class PublishTracker:
    def __init__(self, client: Any, keys: Keys, business_id: int) -> None:
        self.r = client
        self.business_id = business_id
        self.state_key = keys.publish_state(business_id)
        self.stores_key = keys.publish_stores(business_id)
        self.generation_key = keys.publish_generation(business_id)
        self.attention_key = keys.attention_of(business_id, "publish")  # the sweeper's index (sweeper.py)

    def __repr__(self) -> str:
        return f"PublishTracker(business={self.business_id})"

    def touch(self, store_keys: Iterable[str], quiet_ms: int) -> bool:
        """Record a successful write; ``True`` when the caller must send the publish message."""
        args: list[Any] = [now_ms(), quiet_ms, self.business_id, *store_keys]
        keys = [self.state_key, self.stores_key, self.generation_key, self.attention_key]
        return bool(script(self.r, "publish_touch")(keys=keys, args=args))

    def state(self) -> PublishState:
        raw = self.r.hgetall(self.state_key)
        return PublishState(
            generation=int(raw.get("gen", 0)),
            first_write_ms=int(raw.get("first", 0)),
            due_ms=int(raw.get("due", 0)),
        )

    def raw(self) -> dict[str, str]:
        return dict(self.r.hgetall(self.state_key))

    def stores(self) -> set[str]:
        return set(self.r.smembers(self.stores_key))

    def complete(self, generation: int) -> bool:
        """After publishing ``generation``: ``True`` if cleared, ``False`` if another publish is due."""
        return bool(
            script(self.r, "publish_complete")(keys=[self.state_key, self.stores_key], args=[generation, now_ms()])
        )

    def drop(self, generation: int | None = None) -> bool:
        gen = "" if generation is None else str(generation)
        return bool(script(self.r, "publish_drop")(keys=[self.state_key, self.stores_key], args=[gen]))
