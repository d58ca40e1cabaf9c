"""Prometheus counters of the producers (default registry, exposed at ``GET /metrics``).

Changes recorded and superseded are counted by ``workers.submit`` (label ``source`` = producer).
"""

from __future__ import annotations

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
