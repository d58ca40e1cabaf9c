"""The env file through which the ``menusync`` command line finds the dev stack.

``make run`` writes ``var/menusync.env`` (where its Redis and sandbox are); the command line loads
it when neither ``REDIS_URL`` nor ``MENUSYNC_REDIS_URL`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The checkout (or install root) the command line looks in besides the working directory.
ROOT = Path(__file__).resolve().parent.parent

#: The dev stack's connection for the menusync command line (read when no REDIS_URL is set).
CLI_ENV_FILE = "menusync.env"


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of ``path`` (comments and other lines skipped); empty if it is absent."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def write_cli_env_file(var: Path, names: Mapping[str, str]) -> Path:
    """Write ``var/menusync.env`` with ``names`` (mode 0600); answers its path."""
    lines = ["# Written by `make run`: the menusync command line reads it when REDIS_URL is not set."]
    lines += [f"{name}={value}" for name, value in names.items()]
    path = var / CLI_ENV_FILE
    write_private(path, "\n".join(lines) + "\n")
    return path


def load_cli_env(folders: Sequence[Path]) -> Path | None:
    """With neither REDIS_URL nor MENUSYNC_REDIS_URL set, load the first var/menusync.env found
    (variables already set win); answers the file loaded."""
    if os.environ.get("REDIS_URL") or os.environ.get("MENUSYNC_REDIS_URL"):
        return None
    for folder in folders:
        path = folder / "var" / CLI_ENV_FILE
        if path.is_file():
            for name, value in read_env_file(path).items():
                os.environ.setdefault(name, value)
            return path
    return None
