"""heedful users forget|show against a real Redis, and forget through a running proxy's endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import redis

from app.config import Settings
from app.metrics import Metrics
from app.users.memory import build_user_memory
from app.users.profile import DistressPoint
from classifiers.preferences import VENTING, Statement
from tests.conftest import REPO, RedisServer

SECRET = "cli-secret"


def heedful(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")} | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "app.cli", "users", *args], capture_output=True, text=True,
                          timeout=120, env=base | (env or {}))


def remember(url: str, tenant: str, user_id: str) -> None:
    memory = build_user_memory(Settings(redis_url=url, user_memory_secret=SECRET), Metrics())

    async def write() -> None:
        await memory.store.remember(memory.key_for(tenant, user_id), [Statement(VENTING)],
                                    DistressPoint(time.time(), 0.5), time.time())
        await memory.store.aclose()

    asyncio.run(write())


def test_show_then_forget_through_redis(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    remember(redis_server.url, "acme", "u-1")
    remember(redis_server.url, "other", "u-1")
    env = {"HEEDFUL_USER_MEMORY_SECRET": SECRET}
    shown = heedful("show", "u-1", "--tenant", "acme", "--redis-url", redis_server.url, env=env)
    assert shown.returncode == 0, shown.stderr
    held = json.loads(shown.stdout)
    assert held["signals"][VENTING] > 0.99 and [p["distress"] for p in held["distress"]] == [0.5]
    forgot = heedful("forget", "u-1", "--tenant", "acme", "--redis-url", redis_server.url, env=env)
    assert forgot.returncode == 0, forgot.stderr
    assert json.loads(forgot.stdout) == {"user": "u-1", "tenant": "acme", "forgotten": True}
    left = sorted(k.decode() for k in client.scan_iter("heedful:user:*"))
    assert len(left) == 2 and all(k.startswith("heedful:user:other:") for k in left)


def test_forget_needs_the_secret_and_a_store() -> None:
    missing = heedful("forget", "u-1", "--redis-url", "redis://127.0.0.1:1/0")
    assert missing.returncode != 0 and "HEEDFUL_USER_MEMORY_SECRET" in missing.stderr
    nowhere = heedful("forget", "u-1")
    assert nowhere.returncode == 2 and "--server" in nowhere.stderr


def test_forget_through_a_running_proxy(make_proxy, scripted) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import client_for

    proxy = make_proxy()
    client_for(proxy).chat.completions.create(
        model="scripted-empathy-1", user="local-user",
        messages=[{"role": "user", "content": "I just want to vent about my week."}])
    deadline = time.monotonic() + 10
    while True:
        result = heedful("forget", "local-user", "--server", proxy.url)
        if json.loads(result.stdout)["forgotten"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the write lands in the background after the reply
    assert result.returncode == 0 and json.loads(result.stdout)["forgotten"] is True
    again = heedful("forget", "local-user", "--server", proxy.url)
    assert json.loads(again.stdout)["forgotten"] is False
