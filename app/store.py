"""Shared state: the audit stream, per-tenant repair budgets and the score cache.

Without a Redis URL everything lives in process. With one, Redis holds it so replicas share it; when Redis fails, each
operation goes on without it at once, the failure is counted and logged, and Redis is tried again after a short pause,
so no reply waits on a dead Redis for longer than the configured timeout. What each operation does meanwhile:
- audit records go to the on-disk spool (app/audit_spool.py) and a background task re-sends them, oldest first, when
  Redis answers again; while the spool holds records, new ones queue behind them, so the stream keeps their order;
- repair budgets are spent from this replica's share (app/budget_fallback.py), so replicas together stay in bound;
- the score cache is per process (a miss costs one scoring pass, never a wrong answer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.audit_spool import AuditSpool, SpoolFull
from app.bounded_log import BoundedLog
from app.budget_fallback import FallbackBudgets, minute_now
from app.config import Settings
from app.metrics import Metrics

log = logging.getLogger("heedful.store")
AUDIT_STREAM = "heedful:audit"
REVIEW_STREAM = "heedful:review"
_RETRY_AFTER_S = 1.0
# The in-process audit log (no Redis, or Redis away) keeps the newest records within this many bytes of JSON and
# audit_maxlen records: about 17,000 plain records, far fewer with texts.
MEMORY_AUDIT_MAX_BYTES = 16 * 2**20
_RESEND_BATCH = 100
# Re-sending runs in the background (no reply waits on it), so it may wait longer for Redis than a request does: fewer
# spurious timeouts under load, so fewer records sent twice.
_RESEND_TIMEOUT_S = 1.0
Result = TypeVar("Result")


class Store(Protocol):
    async def start(self) -> None: ...
    async def get_scores(self, key: str) -> dict[str, Any] | None: ...
    async def put_scores(self, key: str, value: dict[str, Any], ttl_s: int) -> None: ...
    async def take_budget(self, tenant: str, per_minute: int) -> bool: ...
    async def append_audit(self, record: dict[str, Any], review: bool) -> None: ...
    async def recent_audit(self, count: int) -> list[dict[str, Any]]: ...
    async def health(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


def with_record_id(record: dict[str, Any]) -> dict[str, Any]:
    """Every audit record carries a unique id, so a consumer can drop the copies an at-least-once re-send may leave."""
    return record if "record_id" in record else {"record_id": uuid.uuid4().hex, **record}


class MemoryStore:
    def __init__(self, audit_maxlen: int, cache_size: int = 10_000, audit_max_bytes: int = MEMORY_AUDIT_MAX_BYTES) -> None:
        self._audit = BoundedLog(audit_maxlen, audit_max_bytes)
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._cache_size = cache_size
        self._budgets = FallbackBudgets(replicas=1)  # one process, the whole budget: the same counting as the fallback
        # Readers of each kept record as it is appended (a review console mounted in this process).
        self.audit_listeners: list[Callable[[dict[str, Any]], None]] = []

    async def start(self) -> None:
        return None

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
        return self._budgets.take(tenant, per_minute, minute_now())

    async def append_audit(self, record: dict[str, Any], review: bool) -> None:
        record = with_record_id(record)
        self._audit.append(record)
        for listener in self.audit_listeners:
            listener(record)

    async def recent_audit(self, count: int) -> list[dict[str, Any]]:
        return self._audit.recent(count)

    async def health(self) -> dict[str, Any]:
        return {"kind": "memory", "audit_at_risk": None}

    async def aclose(self) -> None:
        return None


class RedisStore:
    def __init__(self, url: str, timeout_s: float, audit_maxlen: int, retention_s: int, metrics: Metrics,
                 spool: AuditSpool | None = None, spool_problem: str | None = None, budget_replicas: int = 1) -> None:
        def client(timeout: float) -> aioredis.Redis:
            # Said outright, not left to the version's default (a plain redis-py 6+ client retries timeouts with
            # backoff, seconds in all): one try within the timeout, then the store's own fallback.
            return aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), health_check_interval=0)

        self._redis, self._resend_redis = client(timeout_s), client(max(timeout_s, _RESEND_TIMEOUT_S))
        self._fallback = MemoryStore(audit_maxlen)
        self._budgets = FallbackBudgets(budget_replicas)
        self._maxlen, self._retention_s, self._metrics = audit_maxlen, retention_s, metrics
        self._spool, self._spool_problem = spool, spool_problem
        # One thread owns the spool: its disk I/O never blocks the event loop, and appends keep their call order.
        self._spool_thread = ThreadPoolExecutor(1, thread_name_prefix="heedful-audit-spool")
        self._spooled = asyncio.Event()
        self._resender: asyncio.Task[None] | None = None
        self._down_until = 0.0
        self._appends = 0
        self._dropped = 0
        metrics.redis_up.set(1)
        self._show_spool()

    async def start(self) -> None:
        """Start re-sending: records a previous process left in the spool go out as soon as Redis answers."""
        if self._spool is not None and self._resender is None:
            self._resender = asyncio.create_task(self._resend_spooled())
            if self._spool.records:
                log.info("audit spool holds records from before this start; re-sending them",
                         extra={"spool": str(self._spool.path), "records": self._spool.records})
                self._spooled.set()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        if self._down_until <= time.monotonic():
            log.warning("redis unavailable, going on without it", extra={"operation": operation, "error": str(exc)})
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
            minute = minute_now()  # the one clock of budgets (tests pin it)
            key = f"heedful:budget:{tenant}:{minute}"
            unsynced = self._budgets.take_unsynced(tenant, minute)  # repairs allowed locally while Redis was away
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incrby(key, 1 + unsynced)
                    pipe.expire(key, 120)
                    used, _ = await pipe.execute()
                self._ok()
                self._budgets.saw(tenant, minute, int(used))
                return int(used) <= per_minute
            except (RedisError, OSError) as exc:
                self._budgets.unsynced_failed(tenant, minute, unsynced)
                self._failed("take_budget", exc)
        allowed = self._budgets.take(tenant, per_minute, minute_now())
        self._metrics.budget_fallback.labels("allowed" if allowed else "denied").inc()
        return allowed

    async def append_audit(self, record: dict[str, Any], review: bool) -> None:
        record = with_record_id(record)
        # Straight to Redis only while nothing waits in the spool: a new record must not overtake older ones.
        if self._available() and not self._spool_holds_records():
            try:
                fields: dict[Any, Any] = {"record": json.dumps(record)}
                await self._redis.xadd(AUDIT_STREAM, fields, maxlen=self._maxlen, approximate=True)
                if review:
                    await self._redis.xadd(REVIEW_STREAM, fields, maxlen=self._maxlen, approximate=True)
                self._ok()
            except (RedisError, OSError) as exc:
                self._failed("append_audit", exc)
            else:
                await self._trim_now_and_then(self._redis, 1)
                return
        await self._fallback.append_audit(record, review)  # recent_audit still sees it while Redis is away
        await self._spool_record(record, review)

    def _spool_holds_records(self) -> bool:
        return self._spool is not None and self._spool.records > 0

    async def _spool_record(self, record: dict[str, Any], review: bool) -> None:
        if self._spool is None:
            self._drop("spool_unavailable")
            return
        try:
            await self._in_spool_thread(self._spool.append, record, review)
        except SpoolFull as exc:
            self._drop("spool_full")
            log.error("audit record dropped: the spool is full", extra={"request_id": record.get("request_id"),
                                                                         "error": str(exc)})
            return
        except (sqlite3.Error, OSError) as exc:
            self._drop("spool_error")
            log.error("audit record dropped: the spool cannot be written", extra={"request_id": record.get("request_id"),
                                                                                   "error": str(exc)})
            return
        self._metrics.audit_spooled.inc()
        self._show_spool()
        self._spooled.set()

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        self._metrics.audit_dropped.labels(reason).inc()

    async def _resend_spooled(self) -> None:
        """The one sender of spooled records: oldest first, one batch at a time, each forgotten only once Redis has it
        (at least once: a batch that times out after Redis applied it is sent again; `record_id` tells the copies)."""
        assert self._spool is not None
        while True:
            if not self._spool.records:
                self._spooled.clear()
                await self._spooled.wait()
                continue
            wait_s = self._down_until - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                continue
            try:
                await self._resend_batch(self._spool)
            except (RedisError, OSError) as exc:
                self._failed("audit_resend", exc)
            except Exception as exc:  # noqa: BLE001 - the one sender must outlive any error, or the spool never empties
                log.error("audit spool re-send failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(_RETRY_AFTER_S)

    async def _resend_batch(self, spool: AuditSpool) -> None:
        # A frozen Redis still accepts connections and queues what it is sent: probe first, so a batch goes out only
        # to a Redis that answers, and a freeze leaves at most one batch to be applied twice.
        await self._resend_redis.ping()
        batch = await self._in_spool_thread(spool.oldest, _RESEND_BATCH)
        async with self._resend_redis.pipeline(transaction=False) as pipe:
            for item in batch:
                pipe.xadd(AUDIT_STREAM, {"record": item.record}, maxlen=self._maxlen, approximate=True)
                if item.review:
                    pipe.xadd(REVIEW_STREAM, {"record": item.record}, maxlen=self._maxlen, approximate=True)
            await pipe.execute()
        await self._in_spool_thread(spool.remove_through, batch)
        self._metrics.audit_resent.inc(len(batch))
        self._show_spool()
        self._down_until = 0.0  # Redis answers: every operation may use it again
        self._ok()
        await self._trim_now_and_then(self._resend_redis, len(batch))
        if not spool.records:
            log.info("audit spool emptied: every spooled record is in Redis")

    async def _trim_now_and_then(self, client: aioredis.Redis, appended: int) -> None:
        before, self._appends = self._appends, self._appends + appended
        if before // 500 != self._appends // 500:
            oldest_ms = int((time.time() - self._retention_s) * 1000)
            try:
                await client.xtrim(AUDIT_STREAM, minid=oldest_ms, approximate=True)
            except (RedisError, OSError) as exc:  # retention is trimmed again 500 records later; the records are in
                self._failed("trim_audit", exc)

    async def _in_spool_thread(self, call: Callable[..., Result], *args: Any) -> Result:
        return await asyncio.get_running_loop().run_in_executor(self._spool_thread, call, *args)

    def _show_spool(self) -> None:
        spool = self._spool
        self._metrics.audit_spool_records.set(spool.records if spool else 0)
        self._metrics.audit_spool_bytes.set(spool.bytes if spool else 0)

    async def recent_audit(self, count: int) -> list[dict[str, Any]]:
        if self._available():
            try:
                entries: list[Any] = list(await self._redis.xrevrange(AUDIT_STREAM, count=count) or [])
                self._ok()
                return [json.loads(fields[b"record"]) for _, fields in reversed(entries)]
            except (RedisError, OSError) as exc:
                self._failed("recent_audit", exc)
        return await self._fallback.recent_audit(count)

    async def health(self) -> dict[str, Any]:
        if self._available():  # asked, not assumed: with no traffic nothing else would notice Redis going away
            try:
                await self._redis.ping()
                self._ok()
            except (RedisError, OSError) as exc:
                self._failed("health", exc)
        spool = self._spool
        return {
            "kind": "redis",
            "redis_reachable": self._available(),
            "audit_spool": {
                "path": str(spool.path) if spool else None,
                "problem": self._spool_problem,
                "records": spool.records if spool else 0,
                "bytes": spool.bytes if spool else 0,
                "max_records": spool.max_records if spool else 0,
                "max_bytes": spool.max_bytes if spool else 0,
            },
            "audit_records_dropped": self._dropped,
            "audit_at_risk": self._audit_at_risk(),
        }

    def _audit_at_risk(self) -> str | None:
        """Why the next audit record could be lost, if it could: readiness fails on it where audit is required."""
        if self._spool is None:
            return f"the audit spool is unavailable: {self._spool_problem}"
        if self._spool.records >= self._spool.max_records or self._spool.bytes >= self._spool.max_bytes:
            return "the audit spool is full"
        return None

    async def aclose(self, final_resend_s: float = 2.0) -> None:
        if self._resender is not None:
            self._resender.cancel()
            await asyncio.gather(self._resender, return_exceptions=True)
        if self._spool is not None and self._spool.records and self._available():
            # Hand what is spooled to Redis if it answers now; what it cannot take stays on disk for the next start.
            try:
                await asyncio.wait_for(self._resend_all(self._spool), final_resend_s)
            except (TimeoutError, asyncio.TimeoutError, RedisError, OSError, sqlite3.Error) as exc:
                log.warning("audit spool not emptied at shutdown; it is re-sent at the next start",
                            extra={"records": self._spool.records, "error": str(exc)})
        if self._spool is not None:
            await self._in_spool_thread(self._spool.close)
        self._spool_thread.shutdown(wait=True)
        await self._redis.aclose()
        await self._resend_redis.aclose()

    async def _resend_all(self, spool: AuditSpool) -> None:
        while spool.records:
            await self._resend_batch(spool)


def open_redis_store(settings: Settings, metrics: Metrics) -> RedisStore:
    """The Redis store with its audit spool. A spool that cannot be opened (an unwritable directory) does not stop the
    proxy: it runs without one, logs why, and /readyz shows it (and fails where audit is required)."""
    assert settings.redis_url is not None
    spool, problem = None, None
    try:
        spool = AuditSpool(settings.audit_spool_dir, settings.audit_spool_max_records, settings.audit_spool_max_bytes,
                           settings.audit_spool_fsync)
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        problem = f"{settings.audit_spool_dir}: {exc}"
        log.error("audit spool unavailable: audit records are lost while Redis is", extra={"error": problem})
    return RedisStore(settings.redis_url, settings.redis_timeout_s, settings.audit_maxlen, settings.audit_retention_s,
                      metrics, spool, problem, settings.budget_replicas)
