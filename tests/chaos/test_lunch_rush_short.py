"""The lunch-rush benchmark at its short scale, as a test of correctness (never of speed).

5 businesses, 2,000 deliveries over 10 s through the webhook receiver, against the sandbox with 10 %
502s and a per-credential rate limit: every delivery accepted, every target right in the published
menus, no write applied twice. The naive pipeline is skipped here; ``python -m bench.lunch_rush``
runs it. Nothing is written under bench/results.
"""

from __future__ import annotations

from bench.lunch_rush import parse_args, run


def test_lunch_rush_short_ends_correct() -> None:
    result = run(parse_args(["--scale", "short", "--skip-naive", "--settle-timeout-s", "120"]))
    menusync = result["raw"]["menusync"]
    assert menusync["send"]["failed"] == 0, menusync["send"]
    assert "settle_error" not in result["raw"], result["raw"].get("settle_error")
    assert menusync["final_state_mismatches"] == 0, menusync["mismatch_examples"]
    assert menusync["applied_twice"] == 0
    assert menusync["changes_recorded"] > 1000
