"""Character knowledge for one request: recall what the user said about how they want to be met, add what this turn
says, and remember this turn's statements and distress afterwards (docs/user-memory.md).

The recall is one store round trip, started while the context pass scores the conversation; the write happens in the
background after the context pass, off the reply's path.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.metrics import Metrics
from app.users.identity import UserKey, opted_out, user_id_of, user_key
from app.users.profile import NO_USER, DistressPoint, Profile, UserView
from app.users.store import InProcessUserStore, RedisUserStore, UserStore
from classifiers import PreparedContext
from classifiers.inputs import ConversationError, message_text
from classifiers.preferences import Statement, detect

log = logging.getLogger("heedful.users")


@dataclass(frozen=True)
class Recalled:
    """One request's user: who (None when unknown or opted out), what was remembered plus this turn's statements."""

    key: UserKey | None
    view: UserView = NO_USER
    statements: tuple[Statement, ...] = ()


NOBODY = Recalled(None)


# Statements of how to be met are short; a long message is read up to here (the classifier's own cap), so the
# detector's patterns never run over a whole request body on the event loop.
_DETECTED_CHARS = 8000


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The last user turn's text, read as the classifier reads it (classifiers.inputs.message_text)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            try:
                return message_text(message.get("content"))[:_DETECTED_CHARS]
            except ConversationError:
                return ""
    return ""


class UserMemory:
    def __init__(self, settings: Settings, store: UserStore) -> None:
        self.settings, self.store = settings, store
        secret = settings.user_memory_secret
        if secret is None:
            if settings.redis_url:
                log.warning("HEEDFUL_USER_MEMORY_SECRET is not set: user memory keys change at every restart and "
                            "differ between replicas, so users are forgotten; set one secret for all replicas")
            self._secret = secrets.token_bytes(32)
        else:
            self._secret = secret.get_secret_value().encode()

    @property
    def enabled(self) -> bool:
        return self.settings.user_memory

    def key_for(self, tenant: str, user_id: str) -> UserKey:
        return user_key(self._secret, tenant, user_id)

    def identify(self, headers: Mapping[str, str], body_user: object, tenant: str) -> UserKey | None:
        """The request's user key; None when memory is off, the client opted out, or no user id was given."""
        if not self.enabled or opted_out(headers.get(self.settings.memory_opt_out_header)):
            return None
        user_id = user_id_of(headers.get(self.settings.user_header), body_user)
        return self.key_for(tenant, user_id) if user_id is not None else None

    async def recall(self, key: UserKey | None, messages: list[dict[str, Any]]) -> Recalled:
        """What is remembered, with this turn's own statements applied (the newest statement wins)."""
        if key is None:
            return NOBODY
        # The round trip goes out first; the detector runs while the store answers.
        stored = asyncio.ensure_future(self.store.recall(key))
        await asyncio.sleep(0)
        statements = tuple(detect(last_user_text(messages)))
        now = time.time()
        profile = (await stored).with_statements(statements, now)
        return Recalled(key, profile.view(now, self.settings.user_memory_retention_s), statements)

    async def remember(self, recall: Awaitable[Recalled], prepared: asyncio.Future[PreparedContext]) -> None:
        """After the context pass: store this turn's statements and its distress (no text)."""
        recalled = await recall
        if recalled.key is None:
            return
        point = None
        try:
            context = await asyncio.shield(prepared)
            distress = context.signals.get("distress")
            point = DistressPoint(time.time(), float(distress)) if distress is not None else None
        except asyncio.CancelledError:
            if not prepared.cancelled():  # this task itself was cancelled (shutdown), not the context pass
                raise
        except Exception:  # noqa: BLE001 - a scoring fault: the statements are still worth keeping
            log.debug("no distress point for this turn", exc_info=True)
        if recalled.statements or point is not None:
            await self.store.remember(recalled.key, recalled.statements, point, time.time())

    async def forget(self, tenant: str, user_id: str) -> bool:
        return await self.store.forget(self.key_for(tenant, user_id))

    async def profile(self, tenant: str, user_id: str) -> Profile:
        return await self.store.recall(self.key_for(tenant, user_id))


async def recalled_view(recalled: Awaitable[Recalled]) -> UserView:
    return (await recalled).view


def build_user_memory(settings: Settings, metrics: Metrics) -> UserMemory:
    store: UserStore = (
        RedisUserStore(settings.redis_url, settings.redis_timeout_s, settings.user_memory_retention_s, metrics)
        if settings.redis_url else InProcessUserStore(settings.user_memory_retention_s, settings.user_memory_max_users)
    )
    return UserMemory(settings, store)
