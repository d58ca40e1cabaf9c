"""The command-line entry point, run as a subprocess."""

from __future__ import annotations

import httpx

from devstack.sandbox.testing import SandboxProcess, options_to_argv


def test_options_become_flags() -> None:
    argv = options_to_argv({"businesses": 2, "downstream_rate": 0.1, "rate_limit_headers": True, "seed": 3})
    assert argv == ["--businesses", "2", "--downstream-rate", "0.1", "--rate-limit-headers", "--fault-seed", "3"]


def test_subprocess_serves_seeded_businesses_and_start_faults() -> None:
    with SandboxProcess(businesses=1, stores_per_business=1, items_per_business=5, downstream_rate=1.0) as proc:
        assert proc.faults()["downstream_rate"] == 1.0
        with httpx.Client(base_url=proc.url, auth=proc.credentials(1001)) as client:
            r = client.get("/v1/partner/branches")
            assert r.status_code == 502
            proc.set_faults(downstream_rate=0.0)
            assert client.get("/v1/partner/branches").json()["data"]["total"] == 1
    assert proc.proc is not None and proc.proc.poll() is not None
