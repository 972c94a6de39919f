"""User memory benchmark: what it adds to a request, and how much it keeps per user.

    .venv/bin/python bench/user_memory_bench.py [--repeats 500] [--out bench/results/user_memory.md]

On the request path the recall (HMAC of the id, the detector on the last user turn, one pipelined Redis round trip) starts
with the context pass and runs while the upstream call opens; the guard waits for it only where it is slower than
opening the upstream stream. Its whole latency is therefore an upper bound on what memory adds. It is measured alone,
while a context pass runs in a scoring thread (as in the proxy), and beside a bare Redis PING on the same connection
kind (what the machine's scheduling alone costs a round trip). The write
(one MULTI) runs in the background after the context pass, off the reply's path; it is measured for completeness.
Size: Redis MEMORY USAGE of a user's two keys, for a full profile (every preference, 16 distress points) and a typical
one (two preferences), and the in-process store's Python memory per user (tracemalloc over 10,000 full profiles).
Starts its own redis-server (as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from app.config import Settings  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.users.memory import UserMemory  # noqa: E402
from app.users.profile import MAX_POINTS, DistressPoint  # noqa: E402
from app.users.store import InProcessUserStore, RedisUserStore  # noqa: E402
from classifiers import DEFAULT_MODEL_DIR, Scorer  # noqa: E402
from classifiers.preferences import PREFERENCES, Statement, detect  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402

TURN = ("Anyway, that's where things are with my brother. He said it at dinner in front of everyone and I just sat "
        "there. I keep replaying it.")
MESSAGES = [{"role": "user", "content": "I just want to vent. My brother made a comment at dinner."},
            {"role": "assistant", "content": "That sounds like it stung. What did he say?"},
            {"role": "user", "content": TURN}]
FULL = [Statement(name, "health care" if name == "states_expertise" else None) for name in PREFERENCES]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(store: RedisUserStore | InProcessUserStore, memory: UserMemory, user: str, statements: list[Statement]) -> None:
    key = memory.key_for("bench", user)
    now = time.time()
    await store.remember(key, statements, None, now)
    for i in range(MAX_POINTS):
        await store.remember(key, [], DistressPoint(now + i, 0.123 + i / 100), now + i)


async def timed_recalls(memory: UserMemory, repeats: int, scorer: Scorer | None) -> list[float]:
    key = memory.key_for("bench", "full")
    pool = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(repeats):
        context = loop.run_in_executor(pool, scorer.prepare, MESSAGES) if scorer is not None else None
        start = time.perf_counter()
        await memory.recall(key, MESSAGES)
        samples.append((time.perf_counter() - start) * 1000)
        if context is not None:
            await context
    pool.shutdown()
    return samples


async def run(repeats: int, server: RedisServer) -> dict[str, object]:
    settings = Settings(redis_url=server.url, user_memory_secret="bench-secret")
    store = RedisUserStore(server.url, 0.05, settings.user_memory_retention_s, Metrics())
    memory = UserMemory(settings, store)
    await fill(store, memory, "full", FULL)
    await fill(store, memory, "typical", [Statement("prefers_venting"), Statement("prefers_directness")])
    for _ in range(50):  # warm the connection pool and the regex caches
        await memory.recall(memory.key_for("bench", "full"), MESSAGES)
    detector = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(TURN)
        detector.append((time.perf_counter() - start) * 1000)
    import redis.asyncio as aioredis

    bare = aioredis.Redis.from_url(server.url)
    pings = []
    for _ in range(repeats):
        start = time.perf_counter()
        await bare.ping()
        pings.append((time.perf_counter() - start) * 1000)
    await bare.aclose()
    store_only = []
    for _ in range(repeats):
        start = time.perf_counter()
        await store.recall(memory.key_for("bench", "full"))
        store_only.append((time.perf_counter() - start) * 1000)
    idle = await timed_recalls(memory, repeats, None)
    scorer = Scorer(DEFAULT_MODEL_DIR, threads=1)
    busy = await timed_recalls(memory, repeats, scorer)
    writes = []
    key = memory.key_for("bench", "writer")
    for i in range(repeats):
        start = time.perf_counter()
        await store.remember(key, [Statement("prefers_venting")], DistressPoint(time.time(), i / repeats), time.time())
        writes.append((time.perf_counter() - start) * 1000)
    client = redis.Redis.from_url(server.url)
    sizes = {}
    for user in ("full", "typical"):
        redis_key = memory.key_for("bench", user).redis_key
        sizes[user] = int(client.memory_usage(redis_key) or 0) + int(client.memory_usage(f"{redis_key}:d") or 0)
    await store.aclose()
    return {"ping": pings, "store": store_only, "detector": detector, "idle": idle, "busy": busy, "writes": writes, "sizes": sizes,
            "in_process": await in_process_bytes(settings)}


async def in_process_bytes(settings: Settings, users: int = 10_000) -> float:
    store = InProcessUserStore(settings.user_memory_retention_s, users)
    memory = UserMemory(settings, store)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(users):
        await fill(store, memory, f"user-{n}", FULL)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    server = RedisServer()
    server.start()
    try:
        result = asyncio.run(run(args.repeats, server))
    finally:
        server.stop()
    rows = [("bare Redis PING round trip (baseline)", result["ping"]),
            ("the store's round trip alone (HGETALL + LRANGE, pipelined)", result["store"]),
            ("detector on the last user turn", result["detector"]),
            ("recall (HMAC + detector + one Redis round trip), idle", result["idle"]),
            ("recall while a context pass runs in a scoring thread", result["busy"]),
            ("write after the context pass (background, one MULTI)", result["writes"])]
    lines = ["# User memory benchmark", "",
             f"`.venv/bin/python bench/user_memory_bench.py --repeats {args.repeats}`, local redis-server, "
             f"{time.strftime('%Y-%m-%d')}.", "",
             "| step | p50 ms | p99 ms |", "|---|---|---|"]
    for name, samples in rows:
        assert isinstance(samples, list)
        lines.append(f"| {name} | {statistics.median(samples):.3f} | {pct(samples, 0.99):.3f} |")
    sizes = result["sizes"]
    assert isinstance(sizes, dict)
    lines += ["", "Memory per user:", "",
              f"- Redis (MEMORY USAGE of the hash and the distress list): full profile (all 7 preferences, "
              f"{MAX_POINTS} distress points) {sizes['full']} bytes; typical (2 preferences, {MAX_POINTS} points) "
              f"{sizes['typical']} bytes.",
              f"- In process (tracemalloc over 10,000 full profiles): {result['in_process']:.0f} bytes per user."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
