"""Who the user is, as far as memory is concerned: a keyed hash of the app's user id, scoped by tenant.

The id comes from the configured header (HEEDFUL_USER_HEADER) or else the OpenAI `user` field. Only
HMAC-SHA256(secret, tenant + NUL + id) is stored; without the secret a stored key cannot be linked to an id, and a
new secret makes every stored key unreachable: rotating the secret forgets every user (docs/user-memory.md).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

MAX_ID_CHARS = 256
OPT_OUT_VALUES = frozenset({"off", "false", "0", "no", "none", "opt-out"})


@dataclass(frozen=True)
class UserKey:
    tenant: str
    digest: str  # hex, 32 characters

    @property
    def redis_key(self) -> str:
        return f"heedful:user:{self.tenant}:{self.digest}"


def user_key(secret: bytes, tenant: str, user_id: str) -> UserKey:
    mac = hmac.new(secret, tenant.encode() + b"\x00" + user_id.encode(), hashlib.sha256)
    return UserKey(tenant, mac.hexdigest()[:32])


def user_id_of(header_value: str | None, body_user: object) -> str | None:
    """The app's id for the user: the header where it is set, else the body's `user` field; None when neither is."""
    for candidate in (header_value, body_user):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:MAX_ID_CHARS]
    return None


def opted_out(header_value: str | None) -> bool:
    return header_value is not None and header_value.strip().lower() in OPT_OUT_VALUES
