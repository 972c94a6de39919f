"""Shared state: the audit stream, per-tenant repair budgets and the score cache.

Without a Redis URL everything lives in process. With one, Redis holds it so replicas share it; when Redis fails, each
operation falls back to the in-process store at once, the failure is counted and logged, and Redis is tried again after
a short pause, so no reply waits on a dead Redis for longer than the configured timeout.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.bounded_log import BoundedLog
from app.metrics import Metrics

log = logging.getLogger("heedful.store")
AUDIT_STREAM = "heedful:audit"
REVIEW_STREAM = "heedful:review"
_RETRY_AFTER_S = 1.0
# The in-process audit log (no Redis, or Redis down) keeps the newest records within this many bytes of JSON as well as
# within audit_maxlen records: about 20,000 plain records, far fewer with texts.
MEMORY_AUDIT_MAX_BYTES = 16 * 2**20


class Store(Protocol):
    async def get_scores(self, key: str) -> dict[str, Any] | None: ...
    async def put_scores(self, key: str, value: dict[str, Any], ttl_s: int) -> None: ...
    async def take_budget(self, tenant: str, per_minute: int) -> bool: ...
    async def append_audit(self, record: dict[str, Any], review: bool) -> None: ...
    async def recent_audit(self, count: int) -> list[dict[str, Any]]: ...
    async def aclose(self) -> None: ...


class MemoryStore:
    def __init__(self, audit_maxlen: int, cache_size: int = 10_000, audit_max_bytes: int = MEMORY_AUDIT_MAX_BYTES) -> None:
        self._audit = BoundedLog(audit_maxlen, audit_max_bytes)
        self._review = BoundedLog(audit_maxlen, audit_max_bytes)
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size
        self._budgets: dict[tuple[str, int], int] = {}

    async def get_scores(self, key: str) -> dict[str, Any] | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        self._cache.move_to_end(key)
        return hit[1]

    async def put_scores(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        self._cache[key] = (time.monotonic() + ttl_s, value)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def take_budget(self, tenant: str, per_minute: int) -> bool:
        minute = int(time.time() // 60)
        key = (tenant, minute)
        used = self._budgets.get(key, 0)
        if used >= per_minute:
            return False
        self._budgets = {k: v for k, v in self._budgets.items() if k[1] >= minute - 1}
        self._budgets[key] = used + 1
        return True

    async def append_audit(self, record: dict[str, Any], review: bool) -> None:
        self._audit.append(record)
        if review:
            self._review.append(record)

    async def recent_audit(self, count: int) -> list[dict[str, Any]]:
        return self._audit.recent(count)

    async def aclose(self) -> None:
        return None


class RedisStore:
    def __init__(self, url: str, timeout_s: float, audit_maxlen: int, retention_s: int, metrics: Metrics) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                              retry_on_timeout=False, health_check_interval=0)
        self._fallback = MemoryStore(audit_maxlen)
        self._maxlen, self._retention_s, self._metrics = audit_maxlen, retention_s, metrics
        self._down_until = 0.0
        self._appends = 0
        metrics.redis_up.set(1)

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        if self._down_until <= time.monotonic():
            log.warning("redis unavailable, using the in-process store", extra={"operation": operation, "error": str(exc)})
        self._down_until = time.monotonic() + _RETRY_AFTER_S
        self._metrics.failures.labels("redis").inc()
        self._metrics.redis_up.set(0)

    def _ok(self) -> None:
        self._metrics.redis_up.set(1)

    async def get_scores(self, key: str) -> dict[str, Any] | None:
        if self._available():
            try:
                raw = await self._redis.get(f"heedful:scores:{key}")
                self._ok()
                return json.loads(raw) if raw else None
            except (RedisError, OSError) as exc:
                self._failed("get_scores", exc)
        return await self._fallback.get_scores(key)

    async def put_scores(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        if self._available():
            try:
                await self._redis.set(f"heedful:scores:{key}", json.dumps(value), ex=max(ttl_s, 1))
                self._ok()
                return
            except (RedisError, OSError) as exc:
                self._failed("put_scores", exc)
        await self._fallback.put_scores(key, value, ttl_s)

    async def take_budget(self, tenant: str, per_minute: int) -> bool:
        if self._available():
            key = f"heedful:budget:{tenant}:{int(time.time() // 60)}"
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 120)
                    used, _ = await pipe.execute()
                self._ok()
                return int(used) <= per_minute
            except (RedisError, OSError) as exc:
                self._failed("take_budget", exc)
        return await self._fallback.take_budget(tenant, per_minute)

    async def append_audit(self, record: dict[str, Any], review: bool) -> None:
        if self._available():
            try:
                fields: dict[Any, Any] = {"record": json.dumps(record)}
                await self._redis.xadd(AUDIT_STREAM, fields, maxlen=self._maxlen, approximate=True)
                if review:
                    await self._redis.xadd(REVIEW_STREAM, fields, maxlen=self._maxlen, approximate=True)
                self._appends += 1
                if self._appends % 500 == 0:
                    oldest_ms = int((time.time() - self._retention_s) * 1000)
                    await self._redis.xtrim(AUDIT_STREAM, minid=oldest_ms, approximate=True)
                self._ok()
                return
            except (RedisError, OSError) as exc:
                self._failed("append_audit", exc)
        await self._fallback.append_audit(record, review)

    async def recent_audit(self, count: int) -> list[dict[str, Any]]:
        if self._available():
            try:
                entries: list[Any] = list(await self._redis.xrevrange(AUDIT_STREAM, count=count) or [])
                self._ok()
                return [json.loads(fields[b"record"]) for _, fields in reversed(entries)]
            except (RedisError, OSError) as exc:
                self._failed("recent_audit", exc)
        return await self._fallback.recent_audit(count)

    async def aclose(self) -> None:
        await self._redis.aclose()
