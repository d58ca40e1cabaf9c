"""A secret never reaches an error, a dead letter, a log line or CLI output through a validation error.

pydantic's own error text repeats the input (``input_value={'secret_key': '...'}``); a credentials
file or an environment with one bad entry must still not print the secret beside it. Secrets of 4,
16 and 64 characters; URL passwords are masked wherever a URL is shown.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from cli.app import app
from config.credentials import Credentials, CredentialsError
from config.settings import Settings, SettingsError, load_settings, mask_url
from workers.changes import Change, Store, Target
from workers.flush import flush_business_now
from workers.runtime import reset_runtime

SECRETS = ["Q#7x", "sk-16-chars-Z9q!", "s" * 20 + "-64-char-secret-" + "Zz9" * 9 + "!" * 1]


@pytest.mark.parametrize("secret", SECRETS, ids=["4", "16", "64"])
def test_a_credentials_entry_without_partner_key_never_repeats_its_secret(
    secret: str, tmp_path: Path, r: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.toml"
    path.write_text(f'[business.398]\nsecret_key = "{secret}"\nprovider_ids = [1]\n')
    with pytest.raises(CredentialsError) as caught:
        Credentials.load(path)
    assert secret not in str(caught.value)
    assert "partner_key" in str(caught.value), "the message still names the field"

    # Through the pipeline: the flush dead-letters the business's targets with the reason.
    logs = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(logs))
    try:
        rt = reset_runtime(Settings(credentials_file=path))  # type: ignore[call-arg]
        target = Target(
            business_id=398, store=Store(brand_id=5297, branch_id=1293), level="item", entity_id=101, field="enabled"
        )
        rt.ledger.record([Change(id="c1", target=target, value=False, occurred_at_ms=1_795_000_000_000)])
        flush_business_now(rt, 398, lambda b, d: None, lambda b, d: None, lambda b: None)
        (record,) = rt.dead_letters.list(398)
        assert record.error_code == "credentials_missing"
        assert secret not in record.model_dump_json()
        shown = CliRunner().invoke(app, ["dlq", "show", record.id])
        listed = CliRunner().invoke(app, ["dlq", "list", "--business", "398"])
        assert shown.exit_code == 0 and secret not in shown.output and secret not in listed.output
    finally:
        structlog.reset_defaults()
        reset_runtime()
    assert secret not in logs.getvalue()


@pytest.mark.parametrize("secret", SECRETS, ids=["4", "16", "64"])
def test_an_invalid_setting_is_named_without_its_value(secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENUSYNC_LEASE_TTL_MS", secret)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "lease_ttl_ms" in str(caught.value) and secret not in str(caught.value)


def test_url_passwords_are_masked_in_reprs_banners_and_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack import run

    password = "r3dis-Pa55word"
    url = f"redis://:{password}@127.0.0.1:6379/0"
    amqp = f"amqp://menusync:{password}@127.0.0.1:5672/vhost"
    assert mask_url(url) == "redis://:****@127.0.0.1:6379/0"
    assert mask_url(amqp) == "amqp://menusync:****@127.0.0.1:5672/vhost"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    settings = Settings(redis_url=url, broker_url=amqp)  # type: ignore[call-arg]
    assert password not in repr(settings) and password not in str(settings)
    assert "redis://:****@127.0.0.1:6379/0" in repr(settings)
    text = run.banner(dev=False, redis_url=url, klikit_url="https://klikit.example", prefix="m")
    assert password not in text and ":****@" in text
    assert password in settings.url_passwords()


def test_status_names_the_redis_it_read_with_the_password_masked(r: Any, redis_url: str) -> None:
    from rich.console import Console

    from cli.status import render
    from workers.runtime import Runtime
    from workers.status import collect

    password = "st4tus-Pa55word"
    rt = Runtime(Settings(redis_url=f"redis://:{password}@127.0.0.1:6379/0"))  # type: ignore[call-arg]
    rt.__dict__["redis"] = r  # the test Redis has no password; the header shows the configured URL
    report = collect(rt)
    console = Console(file=io.StringIO(), width=200)
    console.print(render(report))
    header = console.file.getvalue()  # type: ignore[attr-defined]
    assert "redis://:****@127.0.0.1:6379/0" in header
    assert password not in header and password not in json.dumps(report.__dict__, default=str)


def _captured_logs() -> io.StringIO:
    logs = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(logs))
    return logs


def test_a_world_readable_credentials_file_with_inline_secrets_is_warned_about(tmp_path: Path) -> None:
    secret = SECRETS[1]
    path = tmp_path / "credentials.toml"
    path.write_text(f'[business.398]\npartner_key = "pk"\nsecret_key = "{secret}"\n')
    logs = _captured_logs()
    try:
        path.chmod(0o644)
        Credentials.load(path)
        warned = logs.getvalue()
        path.chmod(0o600)
        Credentials.load(path)
    finally:
        structlog.reset_defaults()
    assert "readable by group or others" in warned and "0o644" in warned
    assert logs.getvalue() == warned, "a private file is not warned about"
    assert secret not in logs.getvalue()


def test_a_malformed_standard_webhooks_secret_is_warned_about_at_start(r: Any) -> None:
    from producers.app import Receiver

    good = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    bad = "whsec_not base64!"
    logs = _captured_logs()
    try:
        Receiver(Settings(standard_webhook_secrets=f"{good},{bad}"), client=r)  # type: ignore[call-arg]
    finally:
        structlog.reset_defaults()
    text = logs.getvalue()
    assert "Standard Webhooks secret is malformed" in text and "position=2" in text
    assert bad not in text and good not in text
