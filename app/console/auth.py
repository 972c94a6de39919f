"""Who may use the console: API tokens with roles, stored only as SHA-256 hashes (a token is 32 random bytes, so a fast
hash is enough: there is nothing to guess), signed session cookies for the browser, and a CSRF token per session.

Roles: viewer (read), reviewer (read and review), admin (everything, the export included).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("viewer", "reviewer", "admin")
TOKEN_PREFIX = "hdc_"


class TokenFileError(ValueError):
    """A token file or entry that cannot be used: says which and why."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _entry(raw: Any, where: str) -> tuple[str, Principal]:
    if not isinstance(raw, dict):
        raise TokenFileError(f"{where}: expected an object {{name, role, sha256}}")
    name, role, digest = raw.get("name"), raw.get("role"), raw.get("sha256")
    if not isinstance(name, str) or not name:
        raise TokenFileError(f"{where}: 'name' must be a non-empty string")
    if role not in ROLES:
        raise TokenFileError(f"{where}: 'role' must be one of {', '.join(ROLES)}, not {role!r}")
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise TokenFileError(f"{where}: 'sha256' must be the 64-character hex SHA-256 of the token (never the token)")
    return digest, Principal(name, role)


class TokenBook:
    """Token hashes -> principals, from the settings' list and the token file."""

    def __init__(self, entries: list[dict[str, Any]], file: Path | None = None) -> None:
        self._by_hash: dict[str, Principal] = {}
        for index, raw in enumerate(entries):
            digest, principal = _entry(raw, f"HEEDFUL_CONSOLE_TOKENS[{index}]")
            self._by_hash[digest] = principal
        if file is not None:
            for index, raw in enumerate(read_token_file(file)):
                digest, principal = _entry(raw, f"{file}: entry {index + 1}")
                self._by_hash[digest] = principal

    def __len__(self) -> int:
        return len(self._by_hash)

    def principal(self, token: str | None) -> Principal | None:
        return self.principal_by_hash(hash_token(token)) if token else None

    def principal_by_hash(self, digest: str) -> Principal | None:
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def read_token_file(file: Path) -> list[Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenFileError(f"{file}: no such token file") from None
    except json.JSONDecodeError as exc:
        raise TokenFileError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise TokenFileError(f"{file}: expected {{\"tokens\": [...]}}")
    return entries


def add_token(file: Path, name: str, role: str) -> str:
    """Create a token for `name`, store its hash in `file` (created with owner-only permissions), return the token."""
    if role not in ROLES:
        raise TokenFileError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    entries = read_token_file(file) if file.exists() else []
    token = new_token()
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
    entries.append({"name": name, "role": role, "sha256": hash_token(token)})
    file.touch(mode=0o600, exist_ok=True)
    file.write_text(json.dumps({"tokens": entries}, indent=2) + "\n", encoding="utf-8")
    return token


def csrf_token(session: dict[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, Any], sent: str | None) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and isinstance(sent, str) and hmac.compare_digest(expected, sent)
