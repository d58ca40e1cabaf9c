"""``make run``'s pieces: the Procfiles name every process, the dev files are private and stable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli import env as cli_env
from config.credentials import Credentials
from devstack import run

ROOT = Path(__file__).resolve().parents[2]


def _procfile(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def test_procfiles_name_every_process() -> None:
    prod = _procfile("Procfile")
    assert set(prod) == {"web", "worker", "inventory", "scheduler"}
    assert "python -m producers.web" in prod["web"]
    assert "dramatiq workers.actors" in prod["worker"] and "PROMETHEUS_MULTIPROC_DIR" in prod["worker"]
    assert "${MENUSYNC_WORKER_PROCESSES:-2}" in prod["worker"] and "${MENUSYNC_WORKER_THREADS:-8}" in prod["worker"]
    dev = _procfile("Procfile.dev")
    assert set(dev) == {"redis", "sandbox", "web", "worker", "inventory", "scheduler"}
    assert "devstack.embedded_redis --port 6390 --dir var/redis" in dev["redis"]
    assert "devstack.sandbox --port 8700" in dev["sandbox"]
    for name in ("web", "worker", "inventory", "scheduler"):
        assert "REDIS_URL=redis://127.0.0.1:6390/0" in dev[name]
        assert "KLIKIT_BASE_URL=http://127.0.0.1:8700" in dev[name]
        assert "MENUSYNC_CREDENTIALS_FILE=var/credentials.toml" in dev[name]


def test_dev_files_are_private_loadable_and_kept_across_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(run.SECRET_ENV, raising=False)
    values = run.write_dev_files(tmp_path)
    env_file = tmp_path / "dev.env"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "api-token").st_mode) == 0o600
    token = values["MENUSYNC_API_TOKENS"]
    assert token.startswith("dev=398:"), "the dev token may write the demo business only"
    assert (tmp_path / "api-token").read_text().strip() == token.removeprefix("dev=398:")
    assert values["MENUSYNC_STANDARD_WEBHOOK_SECRETS"].startswith("398:whsec_")
    credentials_text = (tmp_path / "credentials.toml").read_text()
    assert run.SANDBOX_SECRET not in credentials_text  # the secret comes from the environment
    monkeypatch.setenv(run.SECRET_ENV, values[run.SECRET_ENV])
    credentials = Credentials.load(tmp_path / "credentials.toml")
    assert credentials.get(398).partner_key == "pk_398"
    assert len(credentials.get(398).stores) == 3
    again = run.write_dev_files(tmp_path)
    assert again["MENUSYNC_API_TOKENS"] == token  # stable across runs: curl commands keep working


def test_the_banner_shows_the_curl_but_not_the_token(tmp_path: Path) -> None:
    values = run.write_dev_files(tmp_path)
    text = run.banner(dev=True, redis_url="redis://127.0.0.1:6390/0", klikit_url="http://127.0.0.1:8700", prefix="m")
    assert "/v1/changes" in text and "$(cat var/api-token)" in text
    assert values["MENUSYNC_API_TOKENS"].rsplit(":", 1)[1] not in text
    for port in ("8000", "6390", "8700", "9191"):
        assert port in text


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    table = run.settings_table()
    assert table in readme, "README configuration table is stale: paste `python -m devstack.run settings-table`"
    assert "(undocumented)" not in table


def test_the_cli_finds_the_dev_stack_when_no_redis_is_configured(tmp_path: Path, redis_url: str) -> None:
    import json
    import subprocess
    import sys
    import uuid

    prefix = f"{os.environ['MENUSYNC_PREFIX']}-cli-{uuid.uuid4().hex[:6]}"
    values = {run.SECRET_ENV: "sandbox-secret"}
    run.write_cli_env(tmp_path / "var", values, redis_url=redis_url, klikit_url="http://127.0.0.1:1", prefix=prefix)
    assert stat.S_IMODE(os.stat(tmp_path / "var" / cli_env.CLI_ENV_FILE).st_mode) == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "MENUSYNC_", "KLIKIT_"))}
    env["PYTHONPATH"] = str(run.ROOT)
    cmd = [sys.executable, "-c", "from cli.app import main; main()", "status", "--json"]
    found = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert report["prefix"] == prefix and report["redis"] == redis_url
    # A Redis given in the environment wins over the file.
    env["REDIS_URL"] = redis_url
    env["MENUSYNC_PREFIX"] = "explicit-prefix"
    explicit = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(explicit.stdout)["prefix"] == "explicit-prefix"


def test_make_run_honours_the_web_port_the_user_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("MENUSYNC_WEB_PORT", "8123")
    assert run.web_port_from_env() == 8123
    monkeypatch.setenv("PORT", "8456")
    assert run.web_port_from_env() == 8456  # PORT wins, as in python -m producers.web
    values = run.write_dev_files(tmp_path, web_port=8456)
    assert values["MENUSYNC_SQUARE_NOTIFICATION_URL"] == "http://127.0.0.1:8456/webhooks/square"
    text = run.banner(dev=True, redis_url="redis://x", klikit_url="http://y", prefix="m", web_port=8456)
    assert "http://127.0.0.1:8456/v1/changes" in text or "127.0.0.1:8456" in text
    assert "8000" not in text
    procfile = (run.ROOT / "Procfile.dev").read_text()
    assert "--port ${MENUSYNC_WEB_PORT:-8000}" in procfile and "${MENUSYNC_METRICS_PORT:-9191}" in procfile
