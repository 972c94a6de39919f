"""What a console needs while it runs: its database, tokens, the scorer and policies for explanations and the
playground, and the ingester feeding the database. Built the same way standalone and mounted in the proxy."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.console.auth import TokenBook
from app.console.db import Database
from app.console.ingest import MemoryIngester, RedisIngester
from app.metrics import Metrics
from app.policy.policy_set import PolicySet
from app.policy.watcher import PolicyStore
from app.store import MemoryStore, Store
from classifiers import Scorer

log = logging.getLogger("heedful.console")


@dataclass
class ConsoleRuntime:
    settings: Settings
    db: Database
    tokens: TokenBook
    session_secret: str
    # Where the scorer and the policies come from: the proxy's own when mounted, else loaded here.
    scorer: Callable[[], Scorer]
    policies: Callable[[], PolicySet]
    ingester: MemoryIngester | RedisIngester | None = None
    facets: tuple[float, dict[str, list[str]]] | None = None  # (when, the filter menus' values): refreshed every 30 s
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start_ingest(self, store: Store | None) -> None:
        """Feed the database: from Redis where one is configured, else from the proxy's in-process store."""
        if self.settings.redis_url:
            self.ingester = RedisIngester(self.db, self.settings.redis_url, self.settings.console_ingest_batch,
                                          self.settings.console_retention_days)
        elif isinstance(store, MemoryStore):
            self.ingester = MemoryIngester(self.db, store, self.settings.console_retention_days)
        else:
            log.warning("console: no audit source (no Redis URL and no in-process store); showing stored decisions only")
            return
        self._tasks.append(asyncio.create_task(self.ingester.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ingester is not None:
            await self.ingester.aclose()
        self.db.dispose()


def build_runtime(settings: Settings, scorer: Callable[[], Scorer] | None = None,
                  policies: Callable[[], PolicySet] | None = None) -> ConsoleRuntime:
    tokens = TokenBook(settings.console_tokens, settings.console_tokens_file)
    if not len(tokens):
        log.warning("console: no tokens configured; nobody can sign in (heedful console token add)")
    secret = settings.console_session_secret.get_secret_value() if settings.console_session_secret else None
    if secret is None:
        secret = secrets.token_urlsafe(48)  # sessions end with this process
    loaded: dict[str, Any] = {}

    def own_scorer() -> Scorer:
        if "scorer" not in loaded:
            loaded["scorer"] = Scorer(settings.model_path, threads=1)
        return loaded["scorer"]  # type: ignore[no-any-return]

    def own_policies() -> PolicySet:
        # A standalone console follows edits to the policy files as the proxy does (the proxy's PolicyStore: a broken
        # edit keeps the last good set). Built on first use, so a console with a broken set still starts.
        if "policies" not in loaded:
            loaded["policies"] = PolicyStore(settings.policies, Metrics())
        store: PolicyStore = loaded["policies"]
        store.reload_if_changed()
        return store.active

    return ConsoleRuntime(settings, Database(settings.console_db_url), tokens, secret, scorer or own_scorer,
                          policies or own_policies)
