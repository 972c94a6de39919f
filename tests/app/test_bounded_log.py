"""The in-process audit log (no Redis, or Redis down) stays within a byte bound, newest records kept."""

from __future__ import annotations

import asyncio
import tracemalloc

from app.bounded_log import BoundedLog
from app.store import MemoryStore


def _record(i: int) -> dict:
    scores = {name: i / 7 % 1 for name in ("pacification", "sycophancy", "sycophancy_epistemic", "sycophancy_social",
                                           "rushed_advice")}
    return {"ts": 1_700_000_000 + i, "request_id": f"req-{i:032x}", "policy": "default", "rule": "repair-pacification",
            "action": "regenerate", "outcome": "repaired", "attempts": 1, "scores": scores, "final_scores": dict(scores),
            "context": {"distress": 0.5, "crisis": 0.01, "advice_requested": 0.2}, "latency_ms": {"guard": 12.5, "upstream": 80.0}}


def test_the_in_process_audit_log_stays_within_its_byte_bound():
    """Before: 100,000 records were kept as dicts (~170 MiB); RSS climbed with every request of a soak."""
    store = MemoryStore(audit_maxlen=100_000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        async def append_all() -> None:
            for i in range(30_000):  # ~28 MiB of JSON, ~50 MiB as dicts
                await store.append_audit(_record(i), review=False)

        asyncio.run(append_all())
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 20 * 2**20, f"{held / 2**20:.0f} MiB held"  # the bound is 16 MiB of JSON
    newest = asyncio.run(store.recent_audit(3))
    assert all(record.pop("record_id") for record in newest)  # the store gives each record a unique id
    assert newest == [_record(29_997), _record(29_998), _record(29_999)]


def test_bounds_evict_oldest_first_and_keep_the_newest_record():
    log = BoundedLog(max_records=3, max_bytes=10_000)
    for i in range(5):
        log.append({"i": i})
    assert log.recent(10) == [{"i": 2}, {"i": 3}, {"i": 4}] and log.recent(1) == [{"i": 4}] and log.recent(0) == []
    small = BoundedLog(max_records=100, max_bytes=30)
    small.append({"text": "a" * 10})
    small.append({"text": "b" * 10})
    assert small.recent(5) == [{"text": "b" * 10}] and small.size_bytes <= 30
    small.append({"text": "c" * 100})  # larger than the bound on its own: still kept, alone
    assert small.recent(5) == [{"text": "c" * 100}] and len(small) == 1


def test_lone_surrogates_survive_the_round_trip():
    log = BoundedLog(max_records=10, max_bytes=10_000)
    log.append({"reply": "hi \ud800"})
    assert log.recent(1) == [{"reply": "hi \ud800"}]
