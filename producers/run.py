"""``make run`` (``python -m producers.run``): start menusync and say where everything is.

- ``KLIKIT_BASE_URL`` unset: the **dev stack** (``Procfile.dev``): an embedded Redis on 6390
  (data in ``var/redis``, append-only persistence), the klikit sandbox on 8700, and the web,
  worker, inventory and scheduler processes pointed at them. It first writes
  ``var/credentials.toml`` (the sandbox's demo business 398; its secret is read from
  ``KLIKIT_SECRET_398``, default the sandbox's seeded one) and ``var/dev.env`` (generated
  webhook secrets and an API token, kept across runs, mode 0600).
- ``KLIKIT_BASE_URL`` set: the **production** ``Procfile`` against that klikit, configured by the
  environment as it is (``REDIS_URL``, ``MENUSYNC_CREDENTIALS_FILE``, secrets...).

Both run under honcho; Ctrl-C stops everything (SIGTERM to each process, then SIGKILL after 5 s).

``python -m producers.run exec -- CMD ...`` waits (up to 60 s) until the Redis at ``REDIS_URL``
answers, then replaces itself with ``CMD``: the dev Procfile starts every process at once, and the
inventory consumer and scheduler must not exit because Redis is still starting.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from config.settings import mask_url

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DEV_ENV = VAR / "dev.env"
DEV_CREDENTIALS = VAR / "credentials.toml"
DEV_TOKEN_FILE = VAR / "api-token"
DEV_REDIS_PORT = 6390
DEV_SANDBOX_PORT = 8700
WEB_PORT = 8000
METRICS_PORT = 9191
DEMO_BUSINESS = 398
SANDBOX_PARTNER_KEY = "pk_398"
SANDBOX_SECRET = "sk_398_sandbox"  # the sandbox's seeded demo secret, not a real key
SECRET_ENV = "KLIKIT_SECRET_398"
GENERATED = ("MENUSYNC_API_TOKENS", "MENUSYNC_SQUARE_SIGNATURE_KEYS", "MENUSYNC_SHOPIFY_WEBHOOK_SECRETS")


# -- var/ files --------------------------------------------------------------------------------------


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


#: The dev stack's connection for the menusync command line (read when no REDIS_URL is set).
CLI_ENV_FILE = "menusync.env"


def write_cli_env(var: Path, values: dict[str, str], *, redis_url: str, klikit_url: str, prefix: str) -> Path:
    """Write var/menusync.env: what `menusync ...` needs to reach the running dev stack (mode 0600)."""
    names = {
        "REDIS_URL": redis_url,
        "KLIKIT_BASE_URL": klikit_url,
        "MENUSYNC_PREFIX": prefix,
        "MENUSYNC_CREDENTIALS_FILE": str((var / "credentials.toml").resolve()),
        SECRET_ENV: values[SECRET_ENV],
    }
    lines = ["# Written by `make run`: the menusync command line reads it when REDIS_URL is not set."]
    lines += [f"{name}={value}" for name, value in names.items()]
    path = var / CLI_ENV_FILE
    _write_private(path, "\n".join(lines) + "\n")
    return path


def load_cli_env(folders: Sequence[Path]) -> Path | None:
    """With neither REDIS_URL nor MENUSYNC_REDIS_URL set, load the first var/menusync.env found
    (variables already set win); answers the file loaded."""
    if os.environ.get("REDIS_URL") or os.environ.get("MENUSYNC_REDIS_URL"):
        return None
    for folder in folders:
        path = folder / "var" / CLI_ENV_FILE
        if path.is_file():
            for name, value in _read_env_file(path).items():
                os.environ.setdefault(name, value)
            return path
    return None


def web_port_from_env() -> int:
    """The web port asked for: ``PORT``, else ``MENUSYNC_WEB_PORT``, else 8000 (as producers.web reads them)."""
    return int(os.environ.get("PORT") or os.environ.get("MENUSYNC_WEB_PORT") or WEB_PORT)


def dev_secrets(existing: dict[str, str], web_port: int = WEB_PORT) -> dict[str, str]:
    """The dev stack's secrets: the ones already in var/dev.env, new random ones for the rest."""
    values = dict(existing)
    values.setdefault("MENUSYNC_API_TOKENS", f"dev={DEMO_BUSINESS}:dev-" + secrets.token_urlsafe(24))
    values.setdefault("MENUSYNC_SQUARE_SIGNATURE_KEYS", secrets.token_urlsafe(24))
    values.setdefault("MENUSYNC_SHOPIFY_WEBHOOK_SECRETS", secrets.token_urlsafe(24))
    values.setdefault(
        "MENUSYNC_STANDARD_WEBHOOK_SECRETS",
        f"{DEMO_BUSINESS}:whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    )
    values[SECRET_ENV] = os.environ.get(SECRET_ENV) or existing.get(SECRET_ENV) or SANDBOX_SECRET
    values["MENUSYNC_SQUARE_NOTIFICATION_URL"] = f"http://127.0.0.1:{web_port}/webhooks/square"
    return values


def write_dev_files(var: Path = VAR, web_port: int = WEB_PORT) -> dict[str, str]:
    """Write var/credentials.toml, var/dev.env and var/api-token; answers the dev environment."""
    var.mkdir(parents=True, exist_ok=True)
    (var / "redis").mkdir(exist_ok=True)
    env_path = var / "dev.env"
    values = dev_secrets(_read_env_file(env_path), web_port)
    lines = ["# Generated by `make run` for the dev stack only. Keep it private; delete it to rotate."]
    lines += [f"{name}={value}" for name, value in sorted(values.items())]
    _write_private(env_path, "\n".join(lines) + "\n")
    # The token alone (an entry may carry a name and a business scope: `dev=398:TOKEN`).
    _write_private(var / "api-token", values["MENUSYNC_API_TOKENS"].split(",")[0].rsplit(":", 1)[-1] + "\n")
    credentials = (
        f"# The klikit sandbox's demo business (make run). The secret comes from ${SECRET_ENV}.\n"
        f"[business.{DEMO_BUSINESS}]\n"
        f'partner_key = "{SANDBOX_PARTNER_KEY}"\n'
        f'secret_key_env = "{SECRET_ENV}"\n'
        "provider_ids = [1, 6]\n"
        "stores = [\n"
        "  { brand_id = 5297, branch_id = 1293 },\n"
        "  { brand_id = 5297, branch_id = 5913 },\n"
        "  { brand_id = 1615, branch_id = 1294 },\n"
        "]\n"
    )
    (var / "credentials.toml").write_text(credentials)
    prom = var / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)  # multiprocess metric files of a previous run
    prom.mkdir()
    return values


# -- helpers ------------------------------------------------------------------------------------------


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_redis(url: str, timeout_s: float = 60.0) -> bool:
    import redis

    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return True
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    return False


def wait_for_http(url: str, timeout_s: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the venv's bin first on PATH (python, dramatiq, honcho)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def banner(
    *,
    dev: bool,
    redis_url: str,
    klikit_url: str,
    prefix: str,
    metrics_port: int = METRICS_PORT,
    group: str = "menusync",
    web_port: int = WEB_PORT,
) -> str:
    web = f"http://127.0.0.1:{web_port}"
    lines = [
        "",
        "menusync is starting" + (" (dev stack: Procfile.dev)" if dev else " (Procfile)") + ":",
        f"  web        {web}   POST /webhooks/{{square,shopify,standard}}  POST /v1/changes",
        f"             {web}/healthz  /readyz  /metrics",
        f"  worker     dramatiq workers.actors; metrics at http://127.0.0.1:{metrics_port}/metrics",
        f"  inventory  Redis stream {prefix}:stream:inventory (consumer group {group})",
        "  scheduler  timed re-enables and the sweeper",
        f"  redis      {mask_url(redis_url)}" + (" (embedded, data in var/redis)" if dev else ""),
        f"  klikit     {mask_url(klikit_url)}" + (f" (sandbox; GET /_sandbox/state/{DEMO_BUSINESS})" if dev else ""),
        "",
    ]
    if dev:
        lines += [
            "Send a first change (item 101 sold out at store 5297/1293):",
            "",
            f"  curl -sS -X POST {web}/v1/changes \\",
            '    -H "Authorization: Bearer $(cat var/api-token)" -H "Content-Type: application/json" \\',
            f'    -d \'{{"business_id": {DEMO_BUSINESS}, "changes": [{{"id": "first-1", "kind": "availability", '
            '"level": "item", "entity_ids": [101], "enabled": false, '
            '"stores": [{"brand_id": 5297, "branch_id": 1293}], '
            '"occurred_at": "\'$(date -u +%Y-%m-%dT%H:%M:%SZ)\'"}]}\'',
            "",
            f"then, after the publish quiet period: curl -s {klikit_url}/_sandbox/state/{DEMO_BUSINESS} | "
            "python -m json.tool | grep -A3 '\"101\"'",
            "and: .venv/bin/menusync status",
            "",
        ]
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


# -- the README's configuration table ---------------------------------------------------------------

SETTING_NOTES: dict[str, str] = {
    "redis_url": "Redis of the ledger, leases, debounce state, dead letters, mappings, inventory stream",
    "broker_url": "Dramatiq broker; unset = `REDIS_URL`; `amqp://...` = RabbitMQ (state stays in Redis)",
    "prefix": "prefix of every Redis key (broker namespace `<prefix>-dramatiq`); one per deployment",
    "klikit_base_url": "klikit partner API base URL; unset = the sandbox at `MENUSYNC_SANDBOX_URL`",
    "sandbox_url": "the local sandbox, used when `KLIKIT_BASE_URL` is unset",
    "credentials_file": "per-business klikit credentials (TOML, below)",
    "klikit_connect_timeout_s": "klikit HTTP connect timeout",
    "klikit_read_timeout_s": "klikit HTTP read timeout",
    "klikit_incall_attempts": "attempts of one call inside the client (transient errors) before the worker retries",
    "klikit_incall_min_backoff_s": "first in-call backoff",
    "klikit_incall_max_backoff_s": "largest in-call backoff",
    "flush_window_ms": "wait after the first pending change so that a burst rides one flush",
    "lease_ttl_ms": "per-business lease TTL (flush lease, publish guard), renewed every TTL/3 while held: "
    "a crashed holder stalls its business at most this long",
    "enable_batch_size": "most ids in one bulk enable call",
    "retry_max_age_s": "a write still failing transiently after this long is dead-lettered",
    "retry_min_backoff_ms": "worker retry backoff, first step (exponential, full jitter)",
    "retry_max_backoff_ms": "worker retry backoff, cap",
    "ambiguous_write_settle_ms": "after a write timed out or lost its connection, when its targets are written again",
    "breaker_threshold": "transient failures in a row that open a business's breaker",
    "breaker_open_ms": "how long an open breaker holds that business's flushes (doubling per further failure)",
    "breaker_max_open_ms": "cap of the open time: during a klikit outage one probe call per business per this "
    "interval, and writes resume at most about this long after klikit recovers",
    "rate_per_minute": "klikit requests per minute per credential (a business may override it)",
    "rate_burst": "burst of the per-credential budget",
    "sweep_interval_s": "how often the scheduler runs the sweeper",
    "sweep_stale_after_s": "age of the oldest pending change after which the sweeper re-nudges",
    "publish_quiet_ms": "quiet period after the last write before a publish",
    "publish_max_wait_ms": "longest a steady stream of writes delays a publish",
    "reconcile_after_publish": "read the published stores back (store-mode getMenu) after every publish",
    "reconcile_delay_ms": "wait after a publish before its read-back",
    "reconcile_interval_s": "every business is read back this often, spread over the interval (0 = never)",
    "reconcile_max_repairs": "repairs of a target that drifts again each time before it is dead-lettered",
    "reconcile_repair_window_s": "repairs of one target count together while each follows the last within this",
    "heartbeat_timeout_ms": "Redis broker: a worker silent this long is dead; its messages are re-queued",
    "broker_maintenance_chance": "Redis broker: commands per million that run queue maintenance",
    "worker_processes": "`dramatiq --processes` of the Procfile's worker",
    "worker_threads": "`dramatiq --threads` of the Procfile's worker",
    "api_tokens": "`POST /v1/changes` bearer tokens, `[name=]scope:token` (scope `*` or `398\\|399`), comma-separated",
    "operator_tokens": "operator bearer tokens, `[name=]scope:token`: `/v1/operations/...`, the history API, "
    "the console login",
    "square_signature_keys": "Square signature keys, comma-separated",
    "square_notification_url": "the exact URL of the Square subscription (part of the signed content)",
    "shopify_webhook_secrets": "Shopify app secrets, comma-separated",
    "standard_webhook_secrets": "Standard Webhooks secrets: `[name=]scope:whsec_...`, comma-separated",
    "webhook_max_body_bytes": "largest accepted body (413 above)",
    "webhook_tolerance_s": "Standard Webhooks timestamp tolerance, either way",
    "dedupe_ttl_s": "how long a source event id is remembered for duplicate detection",
    "history_max_per_business": "entries kept per business in the change history (`history:B`); 0 = off",
    "console_users": "`/console` users, `name:bcrypt-hash`, comma-separated",
    "console_session_ttl_s": "a console login ends after this long without a request",
    "dead_letter_retention_days": "open dead letters older than this are removed by the scheduler (days)",
    "max_targets_per_request": "most targets (entity ids x stores) one request may expand into (413 above)",
    "max_until_days": "furthest ahead a timed re-enable (`until`) may lie, in days",
    "inventory_stream": "inventory stream name (key `<prefix>:stream:<name>`)",
    "inventory_group": "inventory consumer group",
    "stock_threshold": "quantity at or below which an item is disabled",
    "log_format": "`json`, `console` or `auto` (console on a terminal)",
    "log_level": "log level",
    "metrics_port": "worker metrics port (the Procfile passes it to Dramatiq as `dramatiq_prom_port`)",
    "worker_metrics": "add Dramatiq's Prometheus middleware to the broker",
}


def settings_table() -> str:
    """The README's configuration table, from ``config.settings.Settings`` (names and defaults)."""
    from pydantic import AliasChoices

    from config.settings import Settings

    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = alias.choices if isinstance(alias, AliasChoices) else [f"MENUSYNC_{name.upper()}"]
        variable = " / ".join(f"`{n}`" for n in names)
        default = (
            "(unset)"
            if info.default is None
            else f"`{str(info.default).lower() if isinstance(info.default, bool) else info.default}`"
        )
        rows.append(f"| {variable} | {default} | {SETTING_NOTES.get(name, '(undocumented)')} |")
    return "\n".join(rows)


# -- commands -----------------------------------------------------------------------------------------


def start(argv: Sequence[str] = ()) -> int:
    from config.settings import Settings

    settings = Settings()
    dev = not settings.klikit_base_url
    web_port = web_port_from_env()
    if dev:
        busy = [p for p in (DEV_REDIS_PORT, DEV_SANDBOX_PORT, web_port, settings.metrics_port) if not port_free(p)]
        if busy:
            print(
                f"make run: port(s) {', '.join(map(str, busy))} already in use (another `make run`?)", file=sys.stderr
            )
            return 1
        values = write_dev_files(web_port=web_port)
        env = child_env(
            {
                SECRET_ENV: values[SECRET_ENV],
                "MENUSYNC_WEB_PORT": str(web_port),
                "MENUSYNC_METRICS_PORT": str(settings.metrics_port),
            }
        )
        procfile = "Procfile.dev"
        redis_url, klikit_url = f"redis://127.0.0.1:{DEV_REDIS_PORT}/0", f"http://127.0.0.1:{DEV_SANDBOX_PORT}"
        write_cli_env(VAR, values, redis_url=redis_url, klikit_url=klikit_url, prefix=settings.prefix)
    else:
        if not settings.credentials_file.exists():
            print(
                f"make run: KLIKIT_BASE_URL is set but the credentials file {settings.credentials_file} does not "
                "exist (set MENUSYNC_CREDENTIALS_FILE; format in README)",
                file=sys.stderr,
            )
            return 1
        prom = VAR / "prometheus"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        env = child_env({"PROMETHEUS_MULTIPROC_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", str(prom))})
        procfile, redis_url, klikit_url = "Procfile", settings.redis_url, settings.klikit_base_url or ""
    text = banner(
        dev=dev,
        redis_url=redis_url,
        klikit_url=klikit_url,
        prefix=settings.prefix,
        metrics_port=settings.metrics_port,
        group=settings.inventory_group,
        web_port=web_port,
    )
    print(text, flush=True)
    # honcho gives the first process PORT = -p: the Procfile's web line (Procfile.dev reads MENUSYNC_WEB_PORT).
    honcho = [sys.executable, "-m", "honcho", "start", "-f", procfile, "-d", str(ROOT), "-p", str(web_port)]
    honcho += ["-e", str(DEV_ENV) if dev else os.devnull]
    honcho += list(argv)
    proc = subprocess.Popen(honcho, cwd=ROOT, env=env)
    try:
        if wait_for_http(f"http://127.0.0.1:{web_port}/readyz", timeout_s=60) and proc.poll() is None:
            print(
                f"\nmenusync is up: http://127.0.0.1:{web_port}/readyz answers. Ctrl-C stops everything.\n", flush=True
            )
        return proc.wait()
    except KeyboardInterrupt:
        # honcho got the same SIGINT (same process group) and is stopping its processes.
        try:
            return proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.terminate()
            return proc.wait()


def exec_after_redis(command: Sequence[str]) -> int:
    if not command:
        print("usage: python -m producers.run exec -- CMD [ARGS...]", file=sys.stderr)
        return 2
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not wait_for_redis(url):
        print(f"producers.run: Redis at {url} did not answer within 60 s", file=sys.stderr)
        return 1
    os.execvp(command[0], list(command))
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["settings-table"]:
        print(settings_table())
        return 0
    if args and args[0] == "exec":
        rest = args[1:]
        if rest and rest[0] == "--":
            rest = rest[1:]
        return exec_after_redis(rest)
    parser = argparse.ArgumentParser(prog="python -m producers.run", description=__doc__.splitlines()[0])
    parser.add_argument("processes", nargs="*", help="only these process types (default: all)")
    parsed = parser.parse_args(args)
    return start(parsed.processes)


if __name__ == "__main__":
    sys.exit(main())
