"""Where user profiles live: in process (the default) or in Redis, shared by replicas.

Redis keeps one hash and one list per user under heedful:user:{tenant}:{digest}:
- the hash: one short field per stated preference, holding the unix second it was stated ("v" venting, "a" advice,
  "d" directness, "g" gentleness, "q" questions, "h" hotlines declined, "e" expertise as "second|field");
- the list ({key}:d): the last MAX_POINTS distress points as "second|distress".
A recall is one pipelined round trip (HGETALL + LRANGE); a write is one MULTI (HSET, HDEL of the retracted opposite,
RPUSH, LTRIM, EXPIRE of both keys), so two requests of one user never lose each other's statements. Both keys expire
after the retention period since the last write. When Redis fails the request goes on without memory (neutral
signals) and the failure is counted; a forget that cannot reach Redis is an error, never a silent success.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.metrics import Metrics
from app.users.identity import UserKey
from app.users.packed import pack, unpack
from app.users.profile import MAX_POINTS, DistressPoint, Profile
from classifiers.preferences import ADVICE, DIRECT, EXPERTISE, GENTLE, HOTLINES, QUESTIONS, VENTING, Statement, retracted_by

log = logging.getLogger("heedful.users")
CODES = {VENTING: "v", ADVICE: "a", DIRECT: "d", GENTLE: "g", QUESTIONS: "q", HOTLINES: "h", EXPERTISE: "e"}
NAMES = {code: name for name, code in CODES.items()}


class UserStoreUnavailable(Exception):
    pass


class UserStore(Protocol):
    async def recall(self, key: UserKey) -> Profile: ...
    async def remember(self, key: UserKey, statements: Sequence[Statement], point: DistressPoint | None,
                       now: float) -> None: ...
    async def forget(self, key: UserKey) -> bool: ...
    async def aclose(self) -> None: ...


class InProcessUserStore:
    """Packed profiles (app/users/packed.py) in a bounded LRU map; a profile not written for the retention period is
    gone."""

    def __init__(self, retention_s: int, max_users: int) -> None:
        self._profiles: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._retention_s, self._max_users = retention_s, max_users

    async def recall(self, key: UserKey) -> Profile:
        hit = self._profiles.get(key.redis_key)
        if hit is None:
            return Profile()
        if time.time() - hit[0] >= self._retention_s:
            del self._profiles[key.redis_key]
            return Profile()
        self._profiles.move_to_end(key.redis_key)
        return unpack(hit[1])

    async def remember(self, key: UserKey, statements: Sequence[Statement], point: DistressPoint | None,
                       now: float) -> None:
        profile = (await self.recall(key)).with_statements(statements, now)
        if point is not None:
            profile = profile.with_point(point)
        self._profiles[key.redis_key] = (now, pack(profile))
        self._profiles.move_to_end(key.redis_key)
        while len(self._profiles) > self._max_users:
            self._profiles.popitem(last=False)

    async def forget(self, key: UserKey) -> bool:
        return self._profiles.pop(key.redis_key, None) is not None

    def __len__(self) -> int:
        return len(self._profiles)

    async def aclose(self) -> None:
        return None


class RedisUserStore:
    def __init__(self, url: str, timeout_s: float, retention_s: int, metrics: Metrics) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                              retry_on_timeout=False, health_check_interval=0)
        self._retention_s, self._metrics = retention_s, metrics

    def _failed(self, operation: str, exc: Exception) -> None:
        log.warning("redis unavailable for user memory", extra={"operation": operation, "error": str(exc)})
        self._metrics.failures.labels("user_memory").inc()

    async def recall(self, key: UserKey) -> Profile:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key.redis_key)
                pipe.lrange(f"{key.redis_key}:d", 0, -1)
                fields, points = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("recall", exc)
            return Profile()
        return decode(fields, points)

    async def remember(self, key: UserKey, statements: Sequence[Statement], point: DistressPoint | None,
                       now: float) -> None:
        fields, retracted = encode_statements(statements, now)
        points_key = f"{key.redis_key}:d"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if retracted:
                    pipe.hdel(key.redis_key, *retracted)
                if fields:
                    mapping: dict[Any, Any] = dict(fields)
                    pipe.hset(key.redis_key, mapping=mapping)
                if point is not None:
                    pipe.rpush(points_key, f"{int(point.at)}|{point.distress:.3f}")
                    pipe.ltrim(points_key, -MAX_POINTS, -1)
                pipe.expire(key.redis_key, self._retention_s)
                pipe.expire(points_key, self._retention_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("remember", exc)

    async def forget(self, key: UserKey) -> bool:
        try:
            return bool(await self._redis.delete(key.redis_key, f"{key.redis_key}:d"))
        except (RedisError, OSError) as exc:
            self._failed("forget", exc)
            raise UserStoreUnavailable(str(exc)) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()


def encode_statements(statements: Sequence[Statement], now: float) -> tuple[dict[str, str], list[str]]:
    """The hash fields to set and the opposite preferences' fields to delete (the newest statement wins)."""
    fields = {CODES[statement.preference]: f"{int(now)}|{statement.field}" if statement.field else str(int(now))
              for statement in statements}
    return fields, sorted(CODES[name] for name in retracted_by(statements))


def decode(fields: dict[Any, Any], points: list[Any]) -> Profile:
    stated: dict[str, float] = {}
    work: str | None = None
    for raw_code, raw_value in fields.items():
        name = NAMES.get(_text(raw_code))
        if name is None:
            continue
        at, _, named_field = _text(raw_value).partition("|")
        try:
            stated[name] = float(at)
        except ValueError:
            continue
        if name == EXPERTISE:
            work = named_field or None
    distress = []
    for raw in points:
        at, _, value = _text(raw).partition("|")
        try:
            distress.append(DistressPoint(float(at), float(value)))
        except ValueError:
            continue
    return Profile(stated, work, tuple(distress))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
