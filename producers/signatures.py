"""Webhook signature schemes, as pure functions over the raw request body.

Each ``verify_*`` function takes the raw bytes exactly as received (never a re-serialised
parse), the header values, and the list of accepted secrets (two during a rotation), and
raises :class:`SignatureError` when no secret verifies. Every comparison is constant-time
(``hmac.compare_digest``). Error messages name what failed, never a secret or a signature.

- **Square**: ``x-square-hmacsha256-signature`` = base64(HMAC-SHA256(signature key,
  notification URL + raw body)). The URL must be exactly the one of the subscription.
- **Shopify**: ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app secret, raw body)).
- **Standard Webhooks**: ``webhook-id``, ``webhook-timestamp`` (unix seconds, within a
  tolerance either way) and ``webhook-signature`` (space-separated ``v1,<base64>`` entries;
  any one matching is enough); the signed content is ``{id}.{timestamp}.{body}`` and the
  secret is ``whsec_<base64 key>``. The ``standardwebhooks`` package computes the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook


class SignatureError(Exception):
    """The request is not authentic (or not fresh). The message is safe to return to the sender."""


def _as_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode()


def _b64_hmac(key: bytes, data: bytes) -> str:
    return base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()


def _matches_any(received: str, expected: Sequence[str]) -> bool:
    # Compare against every candidate (no early exit) so timing does not tell which secret matched.
    received_b = received.strip().encode()
    ok = False
    for candidate in expected:
        ok |= hmac.compare_digest(received_b, candidate.encode())
    return ok


# Square -----------------------------------------------------------------------------------------


def sign_square(body: bytes, notification_url: str, key: str | bytes) -> str:
    """The ``x-square-hmacsha256-signature`` value Square sends for ``body``."""
    return _b64_hmac(_as_bytes(key), notification_url.encode() + body)


def verify_square(body: bytes, signature: str | None, notification_url: str, keys: Sequence[str | bytes]) -> None:
    if not keys:
        raise SignatureError("no signature key is configured for this source")
    if not signature:
        raise SignatureError("missing x-square-hmacsha256-signature header")
    if not _matches_any(signature, [sign_square(body, notification_url, k) for k in keys]):
        raise SignatureError("signature does not match")


# Shopify ----------------------------------------------------------------------------------------


def sign_shopify(body: bytes, secret: str | bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify sends for ``body``."""
    return _b64_hmac(_as_bytes(secret), body)


def verify_shopify(body: bytes, signature: str | None, secrets: Sequence[str | bytes]) -> None:
    if not secrets:
        raise SignatureError("no webhook secret is configured for this source")
    if not signature:
        raise SignatureError("missing X-Shopify-Hmac-Sha256 header")
    if not _matches_any(signature, [sign_shopify(body, s) for s in secrets]):
        raise SignatureError("signature does not match")


# Standard Webhooks ------------------------------------------------------------------------------


def sign_standard(body: bytes, msg_id: str, timestamp_s: int, secret: str) -> str:
    """One ``v1,<base64>`` entry of ``webhook-signature`` (computed by the ``standardwebhooks`` package)."""
    when = datetime.fromtimestamp(timestamp_s, tz=UTC)
    return Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode("utf-8"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


def malformed_standard_secrets(secrets: Sequence[str]) -> list[int]:
    """Positions (1-based) of Standard Webhooks secrets that are not ``whsec_<base64 key>``."""
    bad = []
    for position, secret in enumerate(secrets, start=1):
        key = secret.removeprefix("whsec_")
        try:
            ok = secret.startswith("whsec_") and len(base64.b64decode(key, validate=True)) > 0
        except (ValueError, binascii.Error):
            ok = False
        if not ok:
            bad.append(position)
    return bad


@lru_cache(maxsize=64)
def _webhook(secret: str) -> Webhook:
    """The signer of one configured secret, built once (it decodes the key); a malformed secret raises
    every time (not cached)."""
    return Webhook(secret)


def verify_standard(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_s: int,
    now_s: float | None = None,
) -> tuple[str, list[int]]:
    """Verify a Standard Webhooks delivery; answers its ``webhook-id`` and the positions (0-based) of
    the secrets that signed it (every secret is compared, so the answer takes the same time).

    ``headers`` is looked up by lower-case name (Starlette's headers are case-insensitive).
    """
    if not secrets:
        raise SignatureError("no webhook secret is configured for this source")
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    if not msg_id:
        raise SignatureError("missing webhook-id header")
    if not timestamp:
        raise SignatureError("missing webhook-timestamp header")
    if not signature:
        raise SignatureError("missing webhook-signature header")
    try:
        ts = int(timestamp.strip())
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer number of seconds") from None
    now = time.time() if now_s is None else now_s
    if ts < now - tolerance_s:
        raise SignatureError("webhook-timestamp is too old")
    if ts > now + tolerance_s:
        raise SignatureError("webhook-timestamp is too far in the future")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("signature does not match") from None
    when = datetime.fromtimestamp(ts, tz=UTC)
    expected: list[tuple[int, bytes]] = []
    for position, secret in enumerate(secrets):
        try:
            hook = _webhook(secret)
        except (binascii.Error, ValueError, Exception):  # a malformed configured secret never verifies
            continue
        signed = hook.sign(msg_id=msg_id, timestamp=when, data=text).split(",", 1)[1]
        expected.append((position, base64.b64decode(signed)))
    matched: set[int] = set()
    for entry in signature.split():
        version, sep, value = entry.partition(",")
        if version != "v1" or not sep:
            continue
        try:
            received = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        for position, candidate in expected:
            if hmac.compare_digest(received, candidate):
                matched.add(position)
    if not matched:
        raise SignatureError("signature does not match")
    return msg_id, sorted(matched)
