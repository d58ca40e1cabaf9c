"""Who may write which business: scoped API tokens and webhook secrets, and the businesses menusync serves.

A secret setting (``MENUSYNC_API_TOKENS``, ``MENUSYNC_STANDARD_WEBHOOK_SECRETS``) is a comma-separated
list of entries, each ``[name=]scope:secret``:

- ``scope`` is ``*`` (every business) or business ids joined by ``|`` (``398|399``);
- ``name`` (optional) names the holder in logs and in the change history (``pos-bridge``);
- an entry that is only a secret (no scope) is read as ``*`` and warned about at start-up.

Example: ``MENUSYNC_API_TOKENS="pos-bridge=398|399:tok_1f9c...,ops=*:tok_77ab..."``. Two entries for
one holder are accepted at once during a rotation.

:class:`KnownBusinesses` answers whether menusync has klikit credentials for a business (from the
credentials file, re-read when it changes): a change for any other business is refused at intake,
because it could never be written.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from config.credentials import Credentials, CredentialsError

log = structlog.get_logger("producers.access")

_SCOPED = re.compile(r"^(?:(?P<name>[A-Za-z0-9_.-]{1,64})=)?(?P<scope>\*|\d{1,16}(?:\|\d{1,16})*):(?P<secret>.+)$")


@dataclass(frozen=True)
class Grant:
    """One secret and the businesses it may write (``None``: every business)."""

    name: str
    secret: str
    businesses: frozenset[int] | None

    def __repr__(self) -> str:
        scope = "*" if self.businesses is None else "|".join(str(b) for b in sorted(self.businesses))
        return f"Grant(name={self.name!r}, scope={scope!r})"

    def allows(self, business_id: int) -> bool:
        return self.businesses is None or business_id in self.businesses

    def scope_text(self) -> str:
        return "every business" if self.businesses is None else ", ".join(str(b) for b in sorted(self.businesses))


def parse_grants(entries: Iterable[str], kind: str) -> list[Grant]:
    """Grants from a setting's entries; unscoped entries get ``*`` and a start-up warning."""
    grants: list[Grant] = []
    for position, raw in enumerate(entries, start=1):
        entry = raw.strip()
        match = _SCOPED.match(entry)
        if match is None:
            log.warning(
                f"an unscoped {kind} may write every business: give it a scope ('398|399:secret' or '*:secret')",
                position=position,
            )
            grants.append(Grant(f"{kind}-{position}", entry, None))
            continue
        scope = match["scope"]
        businesses = None if scope == "*" else frozenset(int(b) for b in scope.split("|"))
        grants.append(Grant(match["name"] or f"{kind}-{position}", match["secret"], businesses))
    return grants


def match_token(given: bytes, grants: Sequence[Grant]) -> Grant | None:
    """The grant whose secret equals ``given``; every grant is compared (constant time per grant)."""
    found: Grant | None = None
    for grant in grants:
        if hmac.compare_digest(given, grant.secret.encode()):
            found = grant
    return found


class KnownBusinesses:
    """The businesses the credentials file names (their secrets are not read here), re-read at most
    every ``check_s`` when the file changed."""

    def __init__(self, path: Path, check_s: float = 2.0) -> None:
        self.path = path
        self.check_s = check_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self._known: frozenset[int] = frozenset()
        self._error: str | None = None

    def __repr__(self) -> str:
        return f"KnownBusinesses({self.path})"

    def knows(self, business_id: int) -> bool:
        return business_id in self.businesses()

    def businesses(self) -> frozenset[int]:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.check_s or self._mtime is None:
                self._checked = now
                self._reload()
            return self._known

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = -1.0
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self._known = frozenset(Credentials.business_ids(self.path))
            self._error = None
        except CredentialsError as exc:
            if str(exc) != self._error:
                log.error("credentials file unreadable: changes for every business are refused", error=str(exc))
            self._error = str(exc)
            self._known = frozenset()
