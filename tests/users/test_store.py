"""Both user stores against the same contract; the Redis one against a real redis-server."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest
import redis

from app.metrics import Metrics
from app.users.identity import user_key
from app.users.profile import MAX_POINTS, DistressPoint
from app.users.store import InProcessUserStore, RedisUserStore, UserStore
from classifiers.preferences import ADVICE, EXPERTISE, VENTING, Statement
from tests.conftest import RedisServer

RETENTION = 3600


@pytest.fixture(params=["in_process", "redis"])
def store(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[UserStore]:
    if request.param == "redis":
        redis.Redis.from_url(redis_server.url).flushdb()
        yield RedisUserStore(redis_server.url, 1.0, RETENTION, Metrics())
    else:
        yield InProcessUserStore(RETENTION, max_users=1000)


def test_remember_recall_and_forget(store: UserStore) -> None:
    key = user_key(b"s", "acme", "u1")

    async def scenario() -> None:
        now = time.time()
        assert (await store.recall(key)).empty
        await store.remember(key, [Statement(VENTING), Statement(EXPERTISE, "health care")],
                             DistressPoint(now, 0.7), now)
        profile = await store.recall(key)
        assert set(profile.stated) == {VENTING, EXPERTISE} and profile.work == "health care"
        assert [p.distress for p in profile.distress] == [0.7]
        await store.remember(key, [Statement(ADVICE)], DistressPoint(now + 1, 0.5), now + 1)
        profile = await store.recall(key)
        assert set(profile.stated) == {ADVICE, EXPERTISE}  # wanting advice retracted wanting to vent
        assert [p.distress for p in profile.distress] == [0.7, 0.5]
        assert (await store.recall(user_key(b"s", "other-tenant", "u1"))).empty
        assert await store.forget(key) is True
        assert (await store.recall(key)).empty
        assert await store.forget(key) is False
        await store.aclose()

    asyncio.run(scenario())


def test_distress_points_are_bounded(store: UserStore) -> None:
    key = user_key(b"s", "acme", "many-turns")

    async def scenario() -> None:
        now = time.time()
        for i in range(MAX_POINTS + 10):
            await store.remember(key, [], DistressPoint(now + i, i / 100), now + i)
        points = (await store.recall(key)).distress
        assert len(points) == MAX_POINTS and points[-1].distress == pytest.approx((MAX_POINTS + 9) / 100)
        await store.aclose()

    asyncio.run(scenario())


def test_the_in_process_store_keeps_at_most_max_users() -> None:
    store = InProcessUserStore(RETENTION, max_users=3)

    async def scenario() -> None:
        for i in range(5):
            await store.remember(user_key(b"s", "t", f"u{i}"), [Statement(VENTING)], None, time.time())
        assert len(store) == 3
        assert (await store.recall(user_key(b"s", "t", "u0"))).empty
        assert not (await store.recall(user_key(b"s", "t", "u4"))).empty

    asyncio.run(scenario())


def test_redis_keys_expire_hold_no_text_and_are_per_tenant(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    store = RedisUserStore(redis_server.url, 1.0, RETENTION, Metrics())
    key = user_key(b"s", "acme", "u-secretname")

    async def scenario() -> None:
        await store.remember(key, [Statement(EXPERTISE, "law")], DistressPoint(time.time(), 0.25), time.time())
        await store.aclose()

    asyncio.run(scenario())
    keys = sorted(k.decode() for k in client.keys("*"))
    assert keys == [key.redis_key, f"{key.redis_key}:d"] and all(k.startswith("heedful:user:acme:") for k in keys)
    assert all(0 < client.ttl(k) <= RETENTION for k in keys)
    # Only derived signals with their time: a preference code, a second, a field name from a fixed list, a number.
    fields = client.hgetall(key.redis_key)
    assert list(fields) == [b"e"] and re.fullmatch(rb"\d{10}\|law", fields[b"e"])
    points = client.lrange(f"{key.redis_key}:d", 0, -1)
    assert len(points) == 1 and re.fullmatch(rb"\d{10}\|0\.250", points[0])


def test_a_dead_redis_gives_an_empty_profile_and_forget_raises(redis_server: RedisServer) -> None:
    from app.users.store import UserStoreUnavailable

    metrics = Metrics()
    store = RedisUserStore("redis://127.0.0.1:1/0", 0.2, RETENTION, metrics)
    key = user_key(b"s", "acme", "u1")

    async def scenario() -> None:
        assert (await store.recall(key)).empty
        await store.remember(key, [Statement(VENTING)], None, time.time())  # counted, never raised
        with pytest.raises(UserStoreUnavailable):
            await store.forget(key)
        await store.aclose()

    asyncio.run(scenario())
    assert metrics.failures.labels("user_memory")._value.get() == 3


def test_a_packed_profile_round_trips() -> None:
    from app.users.packed import pack, unpack
    from app.users.profile import Profile
    from classifiers.preferences import PREFERENCES

    now = float(int(time.time()))
    profile = Profile({name: now - i for i, name in enumerate(PREFERENCES)}, "mental health",
                      tuple(DistressPoint(now + i, i / 16) for i in range(MAX_POINTS)))
    data = pack(profile)
    assert unpack(data) == Profile(profile.stated, "mental health",
                                   tuple(DistressPoint(p.at, round(p.distress, 4)) for p in profile.distress))
    assert len(data) < 200
