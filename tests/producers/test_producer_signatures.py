"""Signature schemes: computed here the way each vendor documents them, independently of the code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from producer_helpers import NOTIFICATION_URL, SHOPIFY_SECRETS, SQUARE_KEYS, STANDARD_SECRETS, square_event
from standardwebhooks.webhooks import Webhook

from producers.signatures import (
    SignatureError,
    sign_shopify,
    sign_square,
    sign_standard,
    verify_shopify,
    verify_square,
    verify_standard,
)

BODY = json.dumps(square_event()).encode()


def square_documented(key: str, url: str, body: bytes) -> str:
    # Square: HMAC-SHA256 keyed by the subscription's signature key over notification URL + raw body, base64.
    return base64.b64encode(hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


def shopify_documented(secret: str, body: bytes) -> str:
    # Shopify: HMAC-SHA256 keyed by the app's client secret over the raw body, base64.
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def standard_headers(body: bytes, secret: str, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts: int | None = None):
    ts = int(time.time()) if ts is None else ts
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


SQUARE_SIG = square_documented(SQUARE_KEYS[0], NOTIFICATION_URL, BODY)

# Square ---------------------------------------------------------------------------------------


def test_square_sign_matches_documented_scheme() -> None:
    assert sign_square(BODY, NOTIFICATION_URL, SQUARE_KEYS[0]) == square_documented(
        SQUARE_KEYS[0], NOTIFICATION_URL, BODY
    )


@pytest.mark.parametrize("key", SQUARE_KEYS)
def test_square_accepts_either_key_during_rotation(key: str) -> None:
    verify_square(BODY, square_documented(key, NOTIFICATION_URL, BODY), NOTIFICATION_URL, SQUARE_KEYS)


@pytest.mark.parametrize(
    ("signature", "url", "body", "keys", "message"),
    [
        (None, NOTIFICATION_URL, BODY, SQUARE_KEYS, "missing"),
        ("", NOTIFICATION_URL, BODY, SQUARE_KEYS, "missing"),
        ("not-base64!!", NOTIFICATION_URL, BODY, SQUARE_KEYS, "does not match"),
        (square_documented("other-key", NOTIFICATION_URL, BODY), NOTIFICATION_URL, BODY, SQUARE_KEYS, "does not match"),
        # signed for another URL (Square signs the subscription's URL, trailing slash included)
        (square_documented(SQUARE_KEYS[0], NOTIFICATION_URL + "/", BODY), NOTIFICATION_URL, BODY, SQUARE_KEYS, "match"),
        # body changed after signing (even whitespace)
        (
            square_documented(SQUARE_KEYS[0], NOTIFICATION_URL, BODY),
            NOTIFICATION_URL,
            BODY + b" ",
            SQUARE_KEYS,
            "match",
        ),
        (square_documented(SQUARE_KEYS[0], NOTIFICATION_URL, BODY), NOTIFICATION_URL, BODY, (), "no signature key"),
    ],
)
def test_square_rejections(signature, url, body, keys, message) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_square(body, signature, url, keys)


def test_square_hex_signature_is_not_accepted() -> None:
    digest = hmac.new(SQUARE_KEYS[0].encode(), NOTIFICATION_URL.encode() + BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        verify_square(BODY, digest, NOTIFICATION_URL, SQUARE_KEYS)


# Shopify --------------------------------------------------------------------------------------


def test_shopify_sign_matches_documented_scheme() -> None:
    assert sign_shopify(BODY, SHOPIFY_SECRETS[1]) == shopify_documented(SHOPIFY_SECRETS[1], BODY)


@pytest.mark.parametrize("secret", SHOPIFY_SECRETS)
def test_shopify_accepts_either_secret(secret: str) -> None:
    verify_shopify(BODY, shopify_documented(secret, BODY), SHOPIFY_SECRETS)


@pytest.mark.parametrize(
    ("signature", "body", "secrets", "message"),
    [
        (None, BODY, SHOPIFY_SECRETS, "missing"),
        (shopify_documented("wrong", BODY), BODY, SHOPIFY_SECRETS, "does not match"),
        (shopify_documented(SHOPIFY_SECRETS[0], BODY), BODY[:-1], SHOPIFY_SECRETS, "does not match"),
        (shopify_documented(SHOPIFY_SECRETS[0], BODY), BODY, (), "no webhook secret"),
        ("ü-not-ascii", BODY, SHOPIFY_SECRETS, "does not match"),
    ],
)
def test_shopify_rejections(signature, body, secrets, message) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_shopify(body, signature, secrets)


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64), flip=st.integers(min_value=0))
def test_shopify_round_trip_and_any_flipped_byte_fails(body: bytes, secret: str, flip: int) -> None:
    signature = sign_shopify(body, secret)
    verify_shopify(body, signature, [secret])
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(SignatureError):
            verify_shopify(tampered, signature, [secret])


# Standard Webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", STANDARD_SECRETS)
def test_standard_accepts_package_signature_with_either_secret(secret: str) -> None:
    headers = standard_headers(BODY, secret)
    assert verify_standard(BODY, headers, STANDARD_SECRETS, tolerance_s=300)[0] == headers["webhook-id"]


def test_standard_sign_matches_package_and_verifies_with_package() -> None:
    ts = int(time.time())
    sig = sign_standard(BODY, "msg_1", ts, STANDARD_SECRETS[0])
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": sig}
    assert Webhook(STANDARD_SECRETS[0]).verify(BODY, headers) == json.loads(BODY)


def test_standard_several_signatures_any_one_matches() -> None:
    headers = standard_headers(BODY, STANDARD_SECRETS[1])
    other = standard_headers(BODY, "whsec_" + base64.b64encode(b"unrelated").decode())["webhook-signature"]
    headers["webhook-signature"] = f"v2,abc {other} v1,notbase64!! garbage {headers['webhook-signature']}"
    verify_standard(BODY, headers, STANDARD_SECRETS, tolerance_s=300)


def test_standard_title_case_headers_are_found() -> None:
    headers = {k.title(): v for k, v in standard_headers(BODY, STANDARD_SECRETS[0]).items()}
    verify_standard(BODY, headers, STANDARD_SECRETS, tolerance_s=300)


def test_standard_timestamp_tolerance_is_the_configured_one() -> None:
    now = time.time()
    headers = standard_headers(BODY, STANDARD_SECRETS[0], ts=int(now) - 100)
    verify_standard(BODY, headers, STANDARD_SECRETS, tolerance_s=300, now_s=now)
    with pytest.raises(SignatureError, match="too old"):
        verify_standard(BODY, headers, STANDARD_SECRETS, tolerance_s=60, now_s=now)


def _mutate(headers: dict[str, str], **changes: str | None) -> dict[str, str]:
    out = dict(headers)
    for k, v in changes.items():
        name = k.replace("_", "-")
        if v is None:
            out.pop(name)
        else:
            out[name] = v
    return out


GOOD = standard_headers(BODY, STANDARD_SECRETS[0], ts=1_800_000_000)


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (_mutate(GOOD, webhook_id=None), BODY, "missing webhook-id"),
        (_mutate(GOOD, webhook_timestamp=None), BODY, "missing webhook-timestamp"),
        (_mutate(GOOD, webhook_signature=None), BODY, "missing webhook-signature"),
        (_mutate(GOOD, webhook_timestamp="yesterday"), BODY, "not an integer"),
        (_mutate(GOOD, webhook_timestamp=str(1_800_000_000 - 301)), BODY, "too old"),
        (_mutate(GOOD, webhook_timestamp=str(1_800_000_000 + 301)), BODY, "too far in the future"),
        (_mutate(GOOD, webhook_id="msg_other"), BODY, "does not match"),
        (GOOD, BODY + b"\n", "does not match"),
        (GOOD, b"\xff\xfe", "does not match"),
        (_mutate(GOOD, webhook_signature="v1"), BODY, "does not match"),
        (_mutate(GOOD, webhook_signature=GOOD["webhook-signature"].replace("v1,", "v2,")), BODY, "does not match"),
    ],
)
def test_standard_rejections(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_standard(body, headers, STANDARD_SECRETS, tolerance_s=300, now_s=1_800_000_000)


def test_standard_without_secrets_or_with_a_broken_one() -> None:
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_standard(BODY, GOOD, [], tolerance_s=300, now_s=1_800_000_000)
    # a malformed configured secret never verifies, the good one still does
    verify_standard(BODY, GOOD, ["whsec_!!!", STANDARD_SECRETS[0]], tolerance_s=300, now_s=1_800_000_000)


def test_error_messages_never_carry_secrets_or_signatures() -> None:
    cases = [
        lambda: verify_square(BODY, "x", NOTIFICATION_URL, SQUARE_KEYS),
        lambda: verify_shopify(BODY, "x", SHOPIFY_SECRETS),
        lambda: verify_standard(BODY, _mutate(GOOD, webhook_id="m"), STANDARD_SECRETS, tolerance_s=300, now_s=1.8e9),
    ]
    for case in cases:
        with pytest.raises(SignatureError) as info:
            case()
        text = str(info.value)
        assert not any(s in text for s in (*SQUARE_KEYS, *SHOPIFY_SECRETS, *STANDARD_SECRETS))
        assert GOOD["webhook-signature"].split(",")[1] not in text
