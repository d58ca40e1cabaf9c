"""Duplicate deliveries, by source event id.

A delivery whose changes are all of one business and fit one ``record.lua`` call (a signed
Standard Webhook, nearly always) is marked *by the record itself*: ``P:{B}:delivery:<source>:<id>``
(:func:`delivery_key`) is checked and set inside the script that records its changes, so a second
delivery, concurrent or later, finds the mark and is answered 200 with nothing recorded. There is
no window between claim and record, and no ``in_progress`` answer.

Every other delivery (Square and Shopify events, which may reach several businesses; a Standard
Webhook larger than one call) is claimed: ``P:dedupe:<source>:<event id>`` is set with ``SET NX
EX`` *before* recording, as ``pending`` with a short TTL (:data:`CLAIM_TTL_S`), and set to
``done`` for ``dedupe_ttl_s`` only *after* the event is recorded. So:

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


def _short_id(event_id: str) -> str:
    """Keys stay short: a long id is still unique by its digest."""
    return event_id if len(event_id) <= 200 else "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


def dedupe_key(keys: Keys, source: str, event_id: str) -> str:
    return keys("dedupe", source, _short_id(event_id))


def delivery_key(keys: Keys, business_id: int, source: str, event_id: str) -> str:
    """The mark of a one-business delivery, in that business's slot: ``record.lua`` checks and
    sets it in the same step as the record (``producers.recorder.Recorder.accept``)."""
    return keys.business(business_id, "delivery", source, _short_id(event_id))


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
