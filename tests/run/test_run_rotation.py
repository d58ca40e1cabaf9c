"""klikit rotates a secret with no overlap: following the README, the change lands with no restart.

The sandbox, web and worker run as subprocesses. klikit is told the new secret (the old one stops
working at once); the next write is refused (401) and dead-lettered, the business's flushes stop.
The operator then does exactly what the README says: new secret in the credentials file,
`menusync credentials clear 398`, `menusync dlq replay ID`, and the change is published.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from run_support import BUSINESS, STORES, Stack, availability, published_item

from config.redis import Keys
from devstack.stack import WEB_ARGV, WORKER_ARGV, wait_for


def _menusync(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from cli.app import main; main()", *args]
    return subprocess.run(cmd, env=stack.env, capture_output=True, text=True, timeout=60)


def test_a_rotated_klikit_secret_is_used_without_restarting_anything(
    stack: Stack, sandbox_proc: Any, stack_redis: Any, stack_prefix: str
) -> None:
    credentials = Path(stack.env["MENUSYNC_CREDENTIALS_FILE"])
    partner_key, old_secret = sandbox_proc.credentials(BUSINESS)
    stack.start_web(WEB_ARGV)
    worker = stack.start("worker", WORKER_ARGV)
    at = datetime.now(UTC) - timedelta(seconds=30)
    assert stack.post_changes([availability("rot-1", [101], False, at, STORES[0])]).status_code == 202
    wait_for(
        lambda: (published_item(sandbox_proc, STORES[0], 101) or {}).get("enabled") is False,
        timeout=30,
        what="the first change published with the old secret",
    )

    new_secret = "rotated-" + old_secret[::-1]
    sandbox_proc.add_credential(partner_key, new_secret, BUSINESS)  # the old secret stops working now
    assert (
        stack.post_changes([availability("rot-2", [101], True, at + timedelta(seconds=1), STORES[0])]).status_code
        == 202
    )
    keys = Keys(stack_prefix)
    wait_for(
        lambda: stack_redis.exists(keys.business(BUSINESS, "credential", "blocked")),
        timeout=30,
        what="the refused write to block the business",
    )
    [dead_letter_id] = stack_redis.zrange(keys.group("dlq", "index"), 0, -1)

    # The README's steps, with no process restarted.
    credentials.write_text(credentials.read_text().replace(old_secret, new_secret))
    cleared = _menusync(stack, "credentials", "clear", str(BUSINESS))
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    replayed = _menusync(stack, "dlq", "replay", dead_letter_id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    try:
        wait_for(
            lambda: (published_item(sandbox_proc, STORES[0], 101) or {}).get("enabled") is True,
            timeout=30,
            what="the change published with the new secret",
        )
    except AssertionError:
        print(stack.log_tail())
        raise
    assert worker.alive()
    status = json.loads(_menusync(stack, "status", "--json", "--business", str(BUSINESS)).stdout)
    assert status["businesses"][0]["credential"] == "ok"
