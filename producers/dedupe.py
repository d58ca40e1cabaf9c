"""Duplicate deliveries, by source event id.

``P:dedupe:<source>:<event id>`` is claimed with ``SET NX EX`` *before* recording, as
``pending`` with a short TTL (:data:`CLAIM_TTL_S`), and set to ``done`` for ``dedupe_ttl_s`` only
*after* the event is recorded. So:

- a second delivery after the first was recorded finds ``done``: answered 200, nothing recorded;
- a delivery racing the first one finds ``pending``: answered 409 so the sender retries later;
- a crash between claim and record leaves ``pending``, which expires, and the sender's retry
  goes through; an error while recording deletes the claim at once.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from config.redis import Keys

CLAIM_TTL_S = 30
PENDING = "pending"
DONE = "done"

Claim = Literal["claimed", "duplicate", "in_progress"]


def dedupe_key(keys: Keys, source: str, event_id: str) -> str:
    if len(event_id) > 200:  # keep keys short; a long id is still unique by its digest
        event_id = "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()
    return keys("dedupe", source, event_id)


def queue_claim(pipe: Any, key: str) -> None:
    """Queue the claim: two replies (SET NX result, current value)."""
    pipe.set(key, PENDING, nx=True, ex=CLAIM_TTL_S)
    pipe.get(key)


def claim_outcome(set_reply: Any, get_reply: Any) -> Claim:
    if set_reply:
        return "claimed"
    return "duplicate" if get_reply == DONE else "in_progress"


def queue_done(pipe: Any, key: str, ttl_s: int) -> None:
    pipe.set(key, DONE, ex=max(1, int(ttl_s)))
