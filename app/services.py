"""The long-lived services a request needs, built once in the lifespan and kept on app.state."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from app.config import Settings
from app.guard import Guard
from app.metrics import Metrics
from app.policy.watcher import PolicySnapshot, PolicyStore
from app.scoring import ScoringService
from app.store import MemoryStore, Store, open_redis_store
from app.upstream import Upstream
from app.users.memory import UserMemory, build_user_memory
from classifiers import Scorer


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    policies: PolicyStore
    scoring: ScoringService
    upstream: Upstream
    store: Store
    guard: Guard
    users: UserMemory
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run work after the response (audit of a finished stream) without letting the task be collected early."""
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def drain(self, timeout_s: float) -> int:
        """Wait for background work (audit writes of finished streams) before the store closes; returns how many tasks
        were still unfinished at the deadline (and so were cancelled)."""
        pending = set(self.background)
        if not pending:
            return 0
        _, unfinished = await asyncio.wait(pending, timeout=timeout_s)
        for task in unfinished:
            task.cancel()
        return len(unfinished)


def build_services(settings: Settings, metrics: Metrics, policies_read: PolicySnapshot | None = None) -> Services:
    policies = PolicyStore(settings.policies, metrics, policies_read)
    scorer = Scorer(settings.model_path, threads=1, arena=False, idle_threads=settings.scoring_threads)
    store: Store = open_redis_store(settings, metrics) if settings.redis_url else MemoryStore(settings.audit_maxlen)
    scoring = ScoringService(scorer, settings.scoring_threads, store, settings.score_cache_ttl_s, metrics)
    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    upstream = Upstream(settings.upstream, key, settings.upstream_timeout_s, settings.upstream_connect_timeout_s,
                        max_response_bytes=settings.upstream_max_response_bytes,
                        api_key_header=settings.upstream_api_key_header)
    guard = Guard(scoring, upstream, store, metrics, settings.repair_placement, settings.rewrite_draft)
    return Services(settings, metrics, policies, scoring, upstream, store, guard, build_user_memory(settings, metrics))


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]
