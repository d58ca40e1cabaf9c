"""Basic authentication and scope checks.

``Authorization: Basic base64(partner_key:secret_key)``. Missing or malformed header: 401
``auth_missing``; unknown key or wrong secret: 401 ``auth_invalid_credential``; revoked credential:
403 ``auth_revoked``; credential without the route's scope: 403 ``auth_forbidden``.
Error messages never echo the header or the secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from devstack.sandbox.envelope import ApiError
from devstack.sandbox.world import Credential, World


def authenticate(world: World, header: str | None) -> Credential:
    """The credential the header names, if it verifies and is not revoked."""
    if not header:
        raise ApiError("auth_missing", "Authorization header is missing")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise ApiError("auth_missing", "Authorization header must be Basic base64(partner_key:secret_key)")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError("auth_missing", "Authorization header is not valid base64") from None
    partner_key, sep, secret = decoded.partition(":")
    if not sep or not partner_key:
        raise ApiError("auth_missing", "Authorization header must carry partner_key:secret_key")
    credential = world.credentials.get(partner_key)
    if credential is None or not hmac.compare_digest(credential.secret_key.encode(), secret.encode()):
        raise ApiError("auth_invalid_credential", "partner_key or secret_key did not verify")
    if credential.revoked:
        raise ApiError("auth_revoked", "credential is revoked")
    return credential


def require_scope(credential: Credential, scope: str) -> None:
    if scope not in credential.scopes:
        raise ApiError("auth_forbidden", f"credential is not authorized for scope {scope}")
