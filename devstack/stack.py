"""Run menusync's processes as subprocesses, exactly as the Procfile names them.

Used by the end-to-end process tests, the chaos runs and the benchmarks:
``ServiceProcess`` starts one command with an environment built by
:func:`stack_env`, and can stop it gracefully (SIGTERM) or kill it (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

#: The checkout this module belongs to.
REPO_ROOT = Path(__file__).resolve().parent.parent

#: The worker command of the Procfile (processes and threads come from the environment).
WORKER_ARGV = [sys.executable, "-m", "dramatiq", "workers.actors", "--processes", "1", "--threads", "8"]
WEB_ARGV = [sys.executable, "-m", "producers.web"]
SCHEDULER_ARGV = [sys.executable, "-m", "producers.scheduler"]
INVENTORY_ARGV = [sys.executable, "-m", "producers.inventory"]


def bench_business_ids(count: int) -> list[int]:
    """The sandbox's benchmark businesses: 1001, 1002, ... (devstack/sandbox/seed.py)."""
    return [1000 + k for k in range(1, count + 1)]


def bench_stores(business_id: int, stores: int) -> list[tuple[int, int]]:
    """(brand, branch) of each store of a benchmark business, as the sandbox seeds them."""
    k = business_id - 1000
    base = k * 1_000_000
    brand_count = min(2, stores)
    brands = [base + 900_001 + j for j in range(brand_count)]
    return [(brands[j % brand_count], base + 950_001 + j) for j in range(stores)]


def bench_items(business_id: int, items: int) -> list[int]:
    base = (business_id - 1000) * 1_000_000
    return [base + 100_001 + j for j in range(items)]


def write_credentials(path: Path, businesses: Mapping[int, tuple[str, str]], **extra: Any) -> Path:
    """Write a credentials TOML for ``{business_id: (partner_key, secret)}``.

    ``extra`` per-business keys (e.g. ``provider_ids=[1, 6]``) apply to every business.
    """
    lines = []
    for business_id, (partner_key, secret) in sorted(businesses.items()):
        lines.append(f"[business.{business_id}]")
        lines.append(f'partner_key = "{partner_key}"')
        lines.append(f'secret_key = "{secret}"')
        for name, value in extra.items():
            lines.append(f"{name} = {value!r}".replace("'", '"'))
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def stack_env(
    *, redis_url: str, prefix: str, klikit_url: str, credentials_file: Path, **settings: Any
) -> dict[str, str]:
    """The environment of every menusync process: connections plus ``MENUSYNC_<NAME>`` settings."""
    env = dict(os.environ)
    # The processes import this checkout's code, whatever the working directory or installed copy.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "REDIS_URL": redis_url,
            "MENUSYNC_PREFIX": prefix,
            "KLIKIT_BASE_URL": klikit_url,
            "MENUSYNC_CREDENTIALS_FILE": str(credentials_file),
            "MENUSYNC_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # As the Procfile: idle queues are polled every 100 ms (Dramatiq's default is 1 s), so a
    # delayed flush message starts within its flush window.
    env.setdefault("dramatiq_worker_timeout", "100")
    for name, value in settings.items():
        env[f"MENUSYNC_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it answers something truthy (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class ServiceProcess:
    """One menusync process. Output goes to ``log_path`` (or is discarded)."""

    def __init__(self, argv: Iterable[str], env: Mapping[str, str], log_path: Path | None = None) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"ServiceProcess({' '.join(self.argv[2:4])}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ServiceProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group (the dramatiq CLI forks worker processes)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for a graceful exit; SIGKILL after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return None
        self._signal_group(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def wait_until(self, predicate: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.alive():
                raise RuntimeError(f"{self!r} exited with {self.proc.returncode if self.proc else None}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self!r} not ready after {timeout}s")
            time.sleep(0.05)
