"""Prometheus counters of the producers (default registry, exposed at ``GET /metrics``).

Changes recorded and superseded are counted by ``workers.submit`` and ``producers.recorder``
(label ``source`` = producer). ``menusync_record_requests_total`` / ``menusync_record_calls_total``
is how many requests the receiver's group commit recorded per record-script call.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter

WEBHOOK_EVENTS = Counter(
    "menusync_webhook_events",
    "Webhook and canonical API requests by source and outcome",
    ["source", "outcome"],
)
UNMAPPED_EVENTS = Counter(
    "menusync_unmapped_events",
    "Events (or parts of events) whose POS ids have no klikit mapping, by source",
    ["source"],
)
INVALID_EVENTS = Counter(
    "menusync_invalid_events",
    "Inventory stream entries that could not be parsed (acked and kept for review)",
    ["source"],
)
TIMERS = Counter(
    "menusync_timers",
    "Timed re-enables by outcome (fired, cancelled, dropped)",
    ["outcome"],
)
RECORD_REQUESTS = Counter(
    "menusync_record_requests",
    "Requests (with changes) the receiver recorded through its group commit",
)
RECORD_CALLS = Counter(
    "menusync_record_calls",
    "Record-script calls of the receiver's group commit (one per business, source and actor per window)",
)


@cache
def webhook_event(source: str, outcome: str) -> Counter:
    """``WEBHOOK_EVENTS`` of one (source, outcome), looked up once: the receiver counts every request."""
    return WEBHOOK_EVENTS.labels(source, outcome)
