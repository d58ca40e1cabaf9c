"""Who may use the console, and how a login is kept.

Users: ``MENUSYNC_CONSOLE_USERS``, comma-separated ``name:bcrypt-hash`` entries (make a hash with
``python -c 'import bcrypt; print(bcrypt.hashpw(b"...", bcrypt.gensalt()).decode())'``). An operator
token (``MENUSYNC_OPERATOR_TOKENS``, ``[name=]scope:token``) also logs in, with an empty user name,
as its name and for the businesses of its scope only.

A login is a random session id in an HttpOnly, ``SameSite=Strict`` cookie (``Secure`` when served
over https), path ``/console``; Redis keeps ``console:session:<sha256 of the id>`` (user, scope,
CSRF token) and forgets it after ``MENUSYNC_CONSOLE_SESSION_TTL_S`` without a request. Every POST
carries the session's CSRF token in a form field (``csrf``) and is refused (403) without it; the
login form uses a double-submit cookie. Password hashes and tokens never leave this module.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import bcrypt
import structlog

from config.logging import register_secrets
from config.redis import Keys
from config.settings import Settings
from producers.access import Grant, match_token, parse_grants

log = structlog.get_logger("producers.console")

SESSION_COOKIE = "menusync_console"
LOGIN_COOKIE = "menusync_console_login"
COOKIE_PATH = "/console"
#: A hash checked when the user name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))


@dataclass(frozen=True)
class Operator:
    """A logged-in console user (or operator token holder)."""

    name: str
    businesses: frozenset[int] | None
    csrf: str
    session_hash: str = ""

    def allows(self, business_id: int | None) -> bool:
        return self.businesses is None or (business_id is not None and business_id in self.businesses)


def operator_grants(settings: Settings) -> list[Grant]:
    grants = parse_grants([s.get_secret_value() for s in settings.secret_list("operator_tokens")], "operator token")
    register_secrets(g.secret for g in grants)
    return grants


def console_users(settings: Settings) -> dict[str, bytes]:
    """``name -> bcrypt hash``; malformed entries are skipped with a warning naming their position."""
    users: dict[str, bytes] = {}
    for position, entry in enumerate(settings.secret_list("console_users"), start=1):
        name, sep, digest = entry.get_secret_value().partition(":")
        name = name.strip()
        if not sep or not name or not digest.strip().startswith("$2"):
            log.warning("a console user entry is not name:bcrypt-hash; it is ignored", position=position)
            continue
        users[name] = digest.strip().encode()
    register_secrets(h.decode() for h in users.values())
    return users


class Sessions:
    """Console logins in Redis."""

    def __init__(self, client: Any, keys: Keys, settings: Settings) -> None:
        self.r = client
        self.k = keys
        self.ttl_s = max(60, settings.console_session_ttl_s)
        self.users = console_users(settings)
        self.grants = operator_grants(settings)

    def __repr__(self) -> str:
        return f"Sessions({len(self.users)} users, {len(self.grants)} operator tokens)"

    def _key(self, session_hash: str) -> str:
        return self.k("console", "session", session_hash)

    def check_login(self, user: str, password: str) -> tuple[str, frozenset[int] | None] | None:
        """(operator name, businesses) for a good user name and password (or operator token); else ``None``."""
        secret = password.encode()
        if user:
            digest = self.users.get(user)
            try:
                ok = bcrypt.checkpw(secret, digest or _DUMMY_HASH)
            except ValueError:
                ok = False
            return (user, None) if ok and digest is not None else None
        grant = match_token(secret, self.grants)
        return (grant.name, grant.businesses) if grant is not None and secret else None

    def create(self, name: str, businesses: frozenset[int] | None) -> str:
        session_id = secrets.token_urlsafe(32)
        scope = "*" if businesses is None else "|".join(str(b) for b in sorted(businesses))
        key = self._key(_digest(session_id))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"user": name, "scope": scope, "csrf": secrets.token_urlsafe(24)})
        pipe.expire(key, self.ttl_s)
        pipe.execute()
        return session_id

    def get(self, session_id: str | None) -> Operator | None:
        if not session_id or len(session_id) > 128:
            return None
        session_hash = _digest(session_id)
        key = self._key(session_hash)
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.expire(key, self.ttl_s)
        data, _ = pipe.execute()
        if not data or "user" not in data:
            return None
        scope = data.get("scope", "*")
        businesses = None if scope == "*" else frozenset(int(b) for b in scope.split("|") if b)
        return Operator(data["user"], businesses, data.get("csrf", ""), session_hash)

    def end(self, operator: Operator) -> None:
        self.r.delete(self._key(operator.session_hash))


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given).encode(), expected.encode())
