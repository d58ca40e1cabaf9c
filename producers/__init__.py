"""Producers: every way a change enters the pipeline (webhooks, canonical API, inventory stream, CLI)."""
