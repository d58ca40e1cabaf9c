"""Per-business klikit credentials, read from a TOML file.

Format::

    [business.398]
    partner_key = "pk_demo_398"
    secret_key_env = "KLIKIT_SECRET_398"   # or: secret_key = "...", or secret_key_file = "/run/secrets/k"
    provider_ids = [1, 6, 9]
    rate_per_minute = 300                  # optional
    stores = [{ brand_id = 5297, branch_id = 1293 }]   # optional

``secret_key`` is held as a ``SecretStr``: it prints as ``**********``. ``secret_key_file`` names a
file holding the secret (a mounted secret): unlike an environment variable, it can change under a
running process, and the workers pick the new value up (see ``workers.runtime``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from config.settings import validation_summary

log = structlog.get_logger("menusync.credentials")


class StoreRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    brand_id: int
    branch_id: int


class BusinessCredential(BaseModel):
    """One klikit credential, bound to exactly one business."""

    model_config = ConfigDict(frozen=True)

    business_id: int
    partner_key: str
    secret_key: SecretStr
    provider_ids: tuple[int, ...] = (1,)
    rate_per_minute: int | None = None
    stores: tuple[StoreRef, ...] = ()


class _RawEntry(BaseModel):
    partner_key: str
    secret_key: SecretStr | None = None
    secret_key_env: str | None = None
    secret_key_file: Path | None = None
    # publishMenu needs at least one provider (``[1]``: klikit's own channel).
    provider_ids: list[int] = Field(default_factory=lambda: [1], min_length=1)
    rate_per_minute: int | None = None
    stores: list[StoreRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_secret(self) -> _RawEntry:
        given = [self.secret_key, self.secret_key_env, self.secret_key_file]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of secret_key, secret_key_env or secret_key_file")
        return self


class CredentialsError(ValueError):
    """The credentials file is missing, malformed, or names an unset variable."""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise CredentialsError(f"credentials file {path} is not valid TOML: {exc}") from None


class Credentials:
    """The credentials of every configured business, keyed by business id."""

    def __init__(self, entries: dict[int, BusinessCredential], sources: tuple[Path, ...] = ()) -> None:
        self._entries = entries
        self.sources = sources
        """The files these credentials were read from (the credentials file and any secret files)."""

    def __repr__(self) -> str:
        return f"Credentials(businesses={sorted(self._entries)})"

    def __contains__(self, business_id: object) -> bool:
        return business_id in self._entries

    def get(self, business_id: int) -> BusinessCredential:
        try:
            return self._entries[business_id]
        except KeyError:
            raise CredentialsError(f"no klikit credentials configured for business {business_id}") from None

    def businesses(self) -> list[int]:
        return sorted(self._entries)

    def secrets(self) -> list[str]:
        """Plain secret values, for the log redaction processor only."""
        return [c.secret_key.get_secret_value() for c in self._entries.values()]

    @classmethod
    def from_mapping(cls, data: dict[str, object], base: Path | None = None) -> Credentials:
        entries: dict[int, BusinessCredential] = {}
        sources: list[Path] = []
        raw_businesses = data.get("business", {})
        if not isinstance(raw_businesses, dict):
            raise CredentialsError("[business] must be a table of business ids")
        for raw_id, raw in raw_businesses.items():
            try:
                business_id = int(raw_id)
            except ValueError:
                raise CredentialsError(f"business id {raw_id!r} is not an integer") from None
            try:
                entry = _RawEntry.model_validate(raw)
            except ValidationError as exc:
                # Never the pydantic text itself: it repeats the input, secret_key included.
                raise CredentialsError(f"business {business_id}: {validation_summary(exc)}") from None
            secret = entry.secret_key
            if entry.secret_key_file is not None:
                path = entry.secret_key_file if base is None else base / entry.secret_key_file
                try:
                    value = path.read_text().strip()
                except OSError as exc:
                    raise CredentialsError(
                        f"business {business_id}: secret_key_file {path} cannot be read ({exc.strerror})"
                    ) from None
                if not value:
                    raise CredentialsError(f"business {business_id}: secret_key_file {path} is empty")
                secret = SecretStr(value)
                sources.append(path)
            if entry.secret_key_env is not None:
                from_env = os.environ.get(entry.secret_key_env)
                if not from_env:
                    raise CredentialsError(
                        f"business {business_id}: environment variable {entry.secret_key_env} is not set"
                    )
                secret = SecretStr(from_env)
            assert secret is not None
            entries[business_id] = BusinessCredential(
                business_id=business_id,
                partner_key=entry.partner_key,
                secret_key=secret,
                provider_ids=tuple(entry.provider_ids),
                rate_per_minute=entry.rate_per_minute,
                stores=tuple(entry.stores),
            )
        return cls(entries, tuple(sources))

    @staticmethod
    def business_ids(path: Path) -> list[int]:
        """The business ids a credentials file names, without resolving any secret (for intake checks)."""
        raw = _read_toml(path).get("business", {})
        if not isinstance(raw, dict):
            raise CredentialsError("[business] must be a table of business ids")
        try:
            return sorted(int(b) for b in raw)
        except ValueError:
            raise CredentialsError("business ids must be integers") from None

    @classmethod
    def load(cls, path: Path) -> Credentials:
        data = _read_toml(path)
        credentials = cls.from_mapping(data, base=path.parent)
        credentials.sources = (path, *credentials.sources)
        inline = [b for b, raw in (data.get("business") or {}).items() if isinstance(raw, dict) and "secret_key" in raw]
        if inline and path.stat().st_mode & 0o077:
            log.warning(
                "the credentials file holds secret keys inline and is readable by group or others: "
                "chmod 600 it, or name the secret with secret_key_env",
                path=str(path),
                mode=oct(path.stat().st_mode & 0o777),
                businesses=sorted(inline),
            )
        return credentials
