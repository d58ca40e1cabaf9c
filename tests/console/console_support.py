"""Shared by the console tests: users, tokens and a login helper."""

from __future__ import annotations

import re
from typing import Any

import bcrypt

BUSINESS = 398
PASSWORD = "correct horse battery staple"
#: Cost 4: a test login takes a millisecond, not a quarter second.
PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
USERS = f"alice:{PASSWORD_HASH}"
OPERATOR_TOKEN = "op-token-for-tests-only-0001"
SCOPED_TOKEN = "op-token-scoped-to-399-0002"
OPERATOR_TOKENS = f"support={BUSINESS}:{OPERATOR_TOKEN},other=399:{SCOPED_TOKEN}"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: Any, user: str = "alice", password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"username": user, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
