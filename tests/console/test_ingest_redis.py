"""Ingestion from the Redis audit stream the proxies write (a real redis-server): batches, the cursor across restarts,
and a Redis that goes away."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis

from app.console.db import Database
from app.console.ingest import RedisIngester, cursor_of
from app.console.queries import Filters, decisions_page
from app.store import AUDIT_STREAM
from tests.conftest import RedisServer
from tests.console.records import audit_record


def test_the_stream_is_read_in_batches_and_resumed_after_a_restart(redis_server: RedisServer, db_url: str) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(AUDIT_STREAM)
    for i in range(25):
        client.xadd(AUDIT_STREAM, {"record": json.dumps(audit_record(i, 1_800_000_000.0 + i))})
    db = Database(db_url)

    async def read(batches: int) -> list[int]:
        ingester = RedisIngester(db, redis_server.url, batch=10, retention_days=10_000)
        try:
            return [await ingester.poll_once() for _ in range(batches)]
        finally:
            await ingester.aclose()

    assert asyncio.run(read(2)) == [10, 10]
    # A new ingester (a restarted console) goes on from the stored cursor: nothing twice, nothing lost.
    assert asyncio.run(read(2)) == [5, 0]
    for i in range(25, 28):
        client.xadd(AUDIT_STREAM, {"record": json.dumps(audit_record(i, 1_800_000_000.0 + i))})
    assert asyncio.run(read(1)) == [3]
    with db.session() as session:
        assert decisions_page(session, Filters()).total == 28
    assert cursor_of(db, f"redis:{AUDIT_STREAM}") is not None
    db.dispose()
    client.delete(AUDIT_STREAM)
    client.close()


def test_a_dead_redis_is_retried_not_fatal(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")

    async def run_briefly() -> None:
        ingester = RedisIngester(db, "redis://127.0.0.1:1/0", batch=10, retention_days=30)
        task = asyncio.create_task(ingester.run(pause_s=0.05))
        await asyncio.sleep(0.5)
        assert not task.done()  # still trying, not crashed
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ingester.aclose()

    asyncio.run(run_briefly())
    db.dispose()
