"""Settings read from the environment (12-factor).

Every field maps to one environment variable; most carry the ``MENUSYNC_`` prefix,
the three connection URLs are read under their conventional names. Secrets are
``SecretStr`` so that they never appear in a repr or a log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Settings holding URLs whose password is masked in reprs, banners and headers.
URL_FIELDS = ("redis_url", "broker_url", "klikit_base_url", "sandbox_url")


class SettingsError(ValueError):
    """The environment holds an invalid setting (the message never repeats the value)."""


def validation_summary(exc: ValidationError) -> str:
    """A pydantic error as ``field: message; ...`` without the input values (they may be secrets)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def url_password(url: str | None) -> str | None:
    """The password in a URL, if any."""
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str | None) -> str | None:
    """``redis://:secret@host:6379/0`` -> ``redis://:****@host:6379/0``; URLs without a password unchanged."""
    if not url or not url_password(url):
        return url
    parts = urlsplit(url)
    # The host part is kept as written: a Sentinel URL lists several host:port pairs.
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit((parts.scheme, f"{user}:****@{hostinfo}", parts.path, parts.query, parts.fragment))


def _csv_secrets(value: SecretStr | str | None) -> list[SecretStr]:
    if value is None:
        return []
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return [SecretStr(part.strip()) for part in text.split(",") if part.strip()]


_DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """Process-wide settings. Build with :func:`get_settings` (cached) or directly in tests."""

    model_config = SettingsConfigDict(env_prefix="MENUSYNC_", extra="ignore")

    # Connections
    redis_url: str = Field(_DEFAULT_REDIS_URL, validation_alias=AliasChoices("REDIS_URL", "MENUSYNC_REDIS_URL"))
    broker_url: str | None = Field(None, validation_alias=AliasChoices("BROKER_URL", "MENUSYNC_BROKER_URL"))
    redis_cluster_nodes: str | None = None
    """``host:port[,host:port]`` of a Redis Cluster for the state (the same as
    ``REDIS_URL=redis+cluster://...``); the messages then need ``BROKER_URL=amqp://...``."""
    prefix: str = "menusync"
    """Prefix of every Redis key menusync writes (ledger, leases, debounce, broker namespace)."""
    redis_min_replicas_ack: int = Field(0, ge=0)
    """Intake waits (``WAIT``) until this many replicas hold each recorded batch, else answers 503; 0 = off."""
    redis_ack_timeout_ms: int = Field(1000, gt=0)
    """How long intake's ``WAIT`` waits for the replicas of ``redis_min_replicas_ack``."""

    # klikit
    klikit_base_url: str | None = Field(
        None, validation_alias=AliasChoices("KLIKIT_BASE_URL", "MENUSYNC_KLIKIT_BASE_URL")
    )
    sandbox_url: str = "http://127.0.0.1:8700"
    """Where the local klikit sandbox listens; used when ``KLIKIT_BASE_URL`` is unset."""
    credentials_file: Path = Path("credentials.toml")
    klikit_connect_timeout_s: float = 2.0
    klikit_read_timeout_s: float = 5.0
    klikit_incall_attempts: int = 3
    klikit_incall_min_backoff_s: float = 0.05
    klikit_incall_max_backoff_s: float = 1.0

    # Flush
    flush_window_ms: int = 100
    lease_ttl_ms: int = 10_000
    """Per-business lease TTL (flush lease, publish guard): renewed every TTL/3 while held, so a
    crashed holder stalls its business at most this long."""
    flush_slice_ms: int = Field(1_000, gt=0)
    """The longest one flush holds a worker thread before it re-queues the rest of its business's
    work behind the other businesses (workers/fairness.py); a call in flight finishes first."""
    flush_fresh_max_calls: int = Field(2, ge=1)
    """A newly nudged flush whose round plans more klikit calls than this goes to the backlog lane
    before its first call, so that small flushes stay quick while big ones queue."""
    enable_batch_size: int = 500
    retry_max_age_s: float = 600.0
    """Age of a failing write after which it is dead-lettered instead of retried."""
    retry_min_backoff_ms: int = 200
    retry_max_backoff_ms: int = 30_000
    ambiguous_write_settle_ms: int = 30_000
    """After a write whose outcome is unknown (timeout, dropped connection) klikit may still apply
    it late; its targets are written again (new key) this long after, so an older value cannot stick."""
    breaker_threshold: int = 5
    breaker_open_ms: int = 2_000
    breaker_max_open_ms: int = 3_000
    """Longest an open breaker holds a business's flushes: during a klikit outage one probe call
    goes out per this interval, and writes land at most about this long after klikit recovers."""
    rate_per_minute: int = 300
    """Default per-credential request budget; a business may override it."""
    rate_burst: int = 20
    sweep_interval_s: float = 2.0
    sweep_stale_after_s: float = 5.0

    # Publish
    publish_quiet_ms: int = 3_000
    publish_max_wait_ms: int = 30_000

    # Read-back reconciliation
    reconcile_after_publish: bool = True
    """Read the published stores back (store-mode getMenu) after every successful publish."""
    reconcile_delay_ms: int = 1_000
    """Wait after a publish before its read-back, so that klikit's snapshot is rebuilt."""
    reconcile_interval_s: float = 900.0
    """Every business's stores are read back this often (spread over the interval); 0 = never."""
    reconcile_max_repairs: int = 3
    """Repairs of one target that drift again right after each before it is dead-lettered (drift_persistent)."""
    reconcile_repair_window_s: float = 3_600.0
    """Repairs of one target count together while each follows the previous within this window."""

    # Broker
    heartbeat_timeout_ms: int = 5_000
    """Redis broker: a worker silent this long is dead and its fetched messages are re-queued. Live
    workers poll every 100 ms (the Procfile's ``dramatiq_worker_timeout``), so 5 s leaves room; a
    false alarm only duplicates messages, which the lease and idempotency keys make harmless."""
    broker_maintenance_chance: int = 50_000
    """Redis broker commands per million that run queue maintenance (re-queueing a dead worker's
    messages); Dramatiq's default of 1,000 can leave them unclaimed for minutes on a quiet queue,
    10,000 for 5 s; maintenance is a few cheap commands."""
    worker_processes: int = 2
    worker_threads: int = 8

    # Producers
    api_tokens: SecretStr | None = None
    """Comma-separated bearer tokens accepted by ``POST /v1/changes``."""
    operator_tokens: SecretStr | None = None
    """Operator bearer tokens, ``[name=]scope:token`` entries as in ``api_tokens`` (the scope names the
    businesses the operator may act on): the operations API (``/v1/operations/...``: populate, reset,
    create items), the history API and the console login. Unset = those refuse every request."""
    square_signature_keys: SecretStr | None = None
    square_notification_url: str = "http://127.0.0.1:8000/webhooks/square"
    shopify_webhook_secrets: SecretStr | None = None
    standard_webhook_secrets: SecretStr | None = None
    webhook_max_body_bytes: int = 1024 * 1024
    record_group_ms: float = Field(1.0, ge=0, le=100)
    """``/v1/changes`` and Standard Webhooks requests are recorded together, one record-script call
    per business (``producers.recorder``): those of one event-loop tick, and while a record is in
    flight those arriving until it returns, at most this long; 0 = one tick only."""
    webhook_tolerance_s: int = 300
    dedupe_ttl_s: int = 72 * 3600
    dead_letter_retention_days: float = 30.0
    """Open dead letters older than this are removed by the scheduler."""
    max_targets_per_request: int = 10_000
    """Most targets (entity ids x stores) one request may expand into (413 above)."""
    max_until_days: int = 90
    """Furthest a timed re-enable (``until``) may lie ahead."""
    history_max_per_business: int = 100_000
    """Entries kept in each business's change history (``history:B``, ``XADD MAXLEN ~``); 0 = no history."""
    console_users: SecretStr | None = None
    """Console users, ``name:bcrypt-hash``, comma-separated (an operator token also logs in)."""
    console_session_ttl_s: int = 12 * 3600
    """How long a console login lasts without activity."""
    inventory_stream: str = "inventory"
    inventory_group: str = "menusync"
    stock_threshold: float = 0.0

    # Ops
    log_format: str = "auto"
    """``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise)."""
    log_level: str = "INFO"
    metrics_port: int = 9191
    worker_metrics: bool = True
    """Add Dramatiq's Prometheus middleware (it serves worker metrics once the dramatiq CLI boots it)."""

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _sentinel_url_parses(cls, value: str | None) -> str | None:
        """A malformed ``redis+sentinel://`` URL stops the process at start, naming the problem."""
        from config.redis import is_sentinel_url, parse_sentinel_url

        if value and is_sentinel_url(value):
            parse_sentinel_url(value)
        return value

    @model_validator(mode="after")
    def _cluster_needs_rabbitmq(self) -> Settings:
        """Redis Cluster holds the state only: Dramatiq's Redis broker cannot run on a cluster (its
        scripts derive every key from one namespace), so the messages must go through RabbitMQ."""
        from config.redis import CLUSTER_SCHEME, is_cluster_url, parse_cluster_url

        if self.redis_cluster_nodes:
            if not is_cluster_url(self.redis_url) and self.redis_url != _DEFAULT_REDIS_URL:
                raise ValueError("set either REDIS_URL or MENUSYNC_REDIS_CLUSTER_NODES, not both")
            self.redis_url = f"{CLUSTER_SCHEME}://{self.redis_cluster_nodes}"
        if is_cluster_url(self.redis_url):
            parse_cluster_url(self.redis_url)
            if not self.effective_broker_url.startswith(("amqp://", "amqps://")):
                raise ValueError(
                    "REDIS_URL names a Redis Cluster, which holds menusync's state but cannot carry "
                    "Dramatiq's Redis broker: set BROKER_URL=amqp://... (RabbitMQ)"
                )
            if self.redis_min_replicas_ack:
                raise ValueError("MENUSYNC_REDIS_MIN_REPLICAS_ACK is for a Sentinel-managed Redis, not a cluster")
        return self

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_klikit_url(self) -> str:
        return self.klikit_base_url or self.sandbox_url

    def secret_list(self, name: str) -> list[SecretStr]:
        """The comma-separated secrets of field ``name`` (two are accepted during rotation)."""
        return _csv_secrets(getattr(self, name))

    def url_passwords(self) -> list[str]:
        """Passwords inside the connection URLs (for the log redaction processor only)."""
        return [p for p in (url_password(getattr(self, name)) for name in URL_FIELDS) if p]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name in URL_FIELDS and isinstance(value, str) else value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; an invalid one raises :class:`SettingsError` naming the variable only."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(f"invalid settings: {validation_summary(exc)}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = load_settings()
    from config.logging import register_secrets

    register_secrets(settings.url_passwords())
    return settings
