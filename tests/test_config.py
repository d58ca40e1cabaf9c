"""Settings, credentials and log redaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from config.credentials import Credentials, CredentialsError
from config.logging import configure_logging, register_secrets
from config.settings import Settings


def test_settings_read_conventional_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLIKIT_BASE_URL", "https://klikit.example/v1")
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672")
    monkeypatch.setenv("MENUSYNC_FLUSH_WINDOW_MS", "250")
    s = Settings()
    assert s.effective_klikit_url == "https://klikit.example/v1"
    assert s.effective_broker_url.startswith("amqp://")
    assert s.flush_window_ms == 250


def test_credentials_from_env_and_secret_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_398", "sk-very-secret-398")
    path = tmp_path / "creds.toml"
    path.write_text(
        '[business.398]\npartner_key = "pk_398"\nsecret_key_env = "SECRET_398"\nprovider_ids = [1, 6]\n'
        "stores = [{ brand_id = 5297, branch_id = 1293 }]\n"
    )
    creds = Credentials.load(path)
    cred = creds.get(398)
    assert cred.secret_key.get_secret_value() == "sk-very-secret-398"
    assert cred.provider_ids == (1, 6)
    assert "sk-very-secret-398" not in repr(cred) and "sk-very-secret-398" not in repr(creds)
    with pytest.raises(CredentialsError, match="no klikit credentials configured for business 1"):
        creds.get(1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[business.x]\npartner_key="a"\nsecret_key="b"\n', "not an integer"),
        ('[business.1]\npartner_key="a"\n', "exactly one of secret_key, secret_key_env or secret_key_file"),
        ('[business.1]\npartner_key="a"\nsecret_key_env="NOPE_UNSET_VAR"\n', "NOPE_UNSET_VAR is not set"),
        ("[business.1\n", "not valid TOML"),
        ('[business.1]\npartner_key="a"\nsecret_key="b"\nprovider_ids=[]\n', "provider_ids"),
    ],
)
def test_credentials_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(CredentialsError, match=message):
        Credentials.load(path)


@pytest.fixture
def configured_logging() -> Iterator[None]:
    """Configure logging for one test, then restore structlog's defaults for the others."""
    yield
    structlog.reset_defaults()


def test_log_lines_never_carry_secrets(capsys: pytest.CaptureFixture[str], configured_logging: None) -> None:
    configure_logging("json", "INFO")
    register_secrets(["sk-hidden-value-1"])
    log = structlog.get_logger()
    log.info("calling", authorization="Basic abc", note="key sk-hidden-value-1 leaked?", nested={"secret_key": "x"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert "sk-hidden-value-1" not in line and "Basic abc" not in line
    assert data["authorization"] == "**redacted**"
    assert data["nested"]["secret_key"] == "**redacted**"


def test_a_secret_key_file_is_read_and_followed_when_it_changes(tmp_path: Path, r: object) -> None:
    from workers.runtime import Runtime

    secret = tmp_path / "klikit-398"
    secret.write_text("first-secret\n")
    path = tmp_path / "credentials.toml"
    path.write_text('[business.398]\npartner_key = "pk"\nsecret_key_file = "klikit-398"\n')
    rt = Runtime(Settings(credentials_file=path))  # type: ignore[call-arg]
    assert rt.credential(398).secret_key.get_secret_value() == "first-secret"
    secret.write_text("second-secret-longer\n")
    rt.refresh_credentials()
    assert rt.credential(398).secret_key.get_secret_value() == "second-secret-longer"
    secret.unlink()
    rt.refresh_credentials()  # unreadable now: the previous credentials stay in use
    assert rt.credential(398).secret_key.get_secret_value() == "second-secret-longer"


def test_credentials_are_re_read_after_a_clear_even_when_the_file_looks_unchanged(tmp_path: Path, r: object) -> None:
    import os

    from workers.runtime import Runtime

    path = tmp_path / "credentials.toml"
    path.write_text('[business.398]\npartner_key = "pk"\nsecret_key = "aaaa"\n')
    rt = Runtime(Settings(credentials_file=path))  # type: ignore[call-arg]
    assert rt.credential(398).secret_key.get_secret_value() == "aaaa"
    stat = path.stat()
    path.write_text('[business.398]\npartner_key = "pk"\nsecret_key = "bbbb"\n')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    rt.refresh_credentials()
    assert rt.credential(398).secret_key.get_secret_value() == "aaaa"
    rt.redis.incr(rt.keys.credentials_generation())  # what `menusync credentials clear` does
    rt.refresh_credentials()
    assert rt.credential(398).secret_key.get_secret_value() == "bbbb"


def test_a_cluster_url_names_its_seed_nodes_and_what_is_wrong_without_the_password() -> None:
    import pytest

    from config.redis import RedisUrlError, parse_cluster_url

    parsed = parse_cluster_url("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001")
    assert parsed.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001)) and parsed.password == "s3cret"
    assert "s3cret" not in repr(parsed)
    for url, problem in (
        ("redis+cluster://:s3cret@h:7000/2", "only database 0"),
        ("redis+cluster://:s3cret@h:port", "no valid port"),
        ("redis+cluster://:s3cret@h:7000?x=1", "query strings"),
    ):
        with pytest.raises(RedisUrlError, match=problem) as caught:
            parse_cluster_url(url)
        assert "s3cret" not in str(caught.value)
