"""Prometheus metrics of the pipeline.

In worker processes they are served, with Dramatiq's own, by Dramatiq's Prometheus
middleware (multiprocess mode: set ``PROMETHEUS_MULTIPROC_DIR`` before start); the
web app serves them on ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHANGES_RECORDED = Counter("menusync_changes_recorded_total", "Changes that won in the ledger.", ["source"])
CHANGES_SUPERSEDED = Counter(
    "menusync_changes_superseded_total", "Changes dropped because a newer one was recorded.", ["source"]
)
KLIKIT_CALLS = Counter(
    "menusync_klikit_calls_total", "klikit calls by operation and outcome.", ["operation", "outcome"]
)
RETRIES = Counter("menusync_retries_total", "Writes or publishes scheduled for another try.", ["reason"])
DEAD_LETTERS = Counter("menusync_dead_letters_total", "Dead letters by klikit error code.", ["code"])
PUBLISHES = Counter("menusync_publishes_total", "publishMenu calls by outcome.", ["outcome"])
CHANGES_PER_CALL = Histogram(
    "menusync_changes_per_call",
    "Targets made true by one klikit write.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
CHANGE_TO_APPLIED = Histogram(
    "menusync_change_to_applied_seconds",
    "Time from a change being recorded to its write succeeding.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
WRITE_TO_PUBLISH = Histogram(
    "menusync_last_write_to_publish_seconds",
    "Time from a business's last write to its publish succeeding.",
    buckets=(0.5, 1, 2, 3, 3.5, 4, 5, 7.5, 10, 20, 30, 60),
)
UNREADABLE_MESSAGES = Counter("menusync_unreadable_messages_total", "Messages dead-lettered unread.", ["actor"])
KLIKIT_READS = Counter(
    "menusync_reconcile_reads_total", "getMenu read-backs of klikit's menus, by purpose.", ["purpose"]
)
DRIFT_TARGETS = Counter(
    "menusync_drift_targets_total",
    "Targets whose published value differed from the ledger at a read-back, by kind.",
    ["business", "level", "kind"],
)
LAST_RECONCILE = Gauge(
    "menusync_last_reconcile_timestamp_seconds",
    "When a business's menus were last read back.",
    ["business"],
    multiprocess_mode="max",
)
LEASE_LOST = Counter(
    "menusync_lease_lost_total", "Leases lost while their holder still worked (it stopped writing).", ["kind"]
)
KLIKIT_OUTAGE_SECONDS = Gauge(
    "menusync_klikit_outage_seconds",
    "How long the business's klikit outage (breaker open, not yet closed by a success) has lasted; 0: none.",
    ["business"],
    multiprocess_mode="livemostrecent",
)
