"""Nothing lost when Redis fails: audit records spooled on disk while Redis is killed, frozen or absent, re-sent in order
when it answers again, kept across a proxy crash, and counted where the spool's bound drops them.

Each test has its own redis-server (with an append-only file, so what Redis acknowledged before a kill is still there
after it) and drives the proxy with the official openai client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.scripted_upstream import SCENARIOS
from app.store import AUDIT_STREAM
from tests.conftest import REPO, RedisServer, client_for, wait_for

GOOD = next(s for s in SCENARIOS if s.name == "good")


@dataclass
class Proxy:
    """Any running proxy: one in this process (LocalServer) or a `heedful serve` process."""

    url: str


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def ask(proxy: Proxy) -> str:
    """One request as an app sends it; returns its request id (the audit record carries the same)."""
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": GOOD.user}])
    assert raw.http_response.status_code == 200
    return raw.headers["x-heedful-request-id"]


class Traffic:
    """One client sending requests back to back in a thread, so an outage starts and ends mid-flow; requests are
    sequential, so the order of their request ids is the order their audit records must keep."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy, self.sent, self.failures = proxy, [], []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sent.append(ask(self.proxy))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding, recorded for the assertion
                self.failures.append(repr(exc))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def until(self, count: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.sent) + len(self.failures) < count and time.monotonic() < deadline:
            time.sleep(0.02)


def stream_request_ids(url: str) -> list[str]:
    """Request ids in the audit stream, each at its first copy (a re-send is at least once; copies come later)."""
    seen: dict[str, None] = {}
    for _, fields in redis.Redis.from_url(url).xrange(AUDIT_STREAM):
        seen.setdefault(json.loads(fields[b"record"])["request_id"], None)
    return list(seen)


def readiness(proxy: Proxy) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{proxy.url}/readyz", timeout=10)
    return response.status_code, response.json()


def metric(proxy: Proxy, sample: str) -> float:
    for line in httpx.get(f"{proxy.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{sample} not in /metrics")


def assert_every_record_arrived_in_order(proxy: Proxy, server: RedisServer, sent: list[str]) -> None:
    wait_for(lambda: set(sent) <= set(stream_request_ids(server.url)))
    arrived = stream_request_ids(server.url)
    assert arrived == sent, f"{len(set(sent) - set(arrived))} of {len(sent)} records lost"
    status, ready = readiness(proxy)
    assert status == 200 and ready["store"]["redis_reachable"] is True
    assert ready["store"]["audit_spool"]["records"] == 0 and ready["store"]["audit_records_dropped"] == 0
    assert metric(proxy, "heedful_audit_spool_records") == 0


def test_redis_killed_while_requests_flow_loses_no_audit_record(make_proxy, scripted, own_redis) -> None:
    proxy = make_proxy(redis_url=own_redis.url)
    with Traffic(proxy) as traffic:
        traffic.until(3)
        own_redis.kill()
        traffic.until(len(traffic.sent) + 12)
        status, during_outage = readiness(proxy)
        own_redis.start()
        traffic.until(len(traffic.sent) + 5)
    assert traffic.failures == []
    assert_every_record_arrived_in_order(proxy, own_redis, traffic.sent)
    assert metric(proxy, "heedful_audit_spooled_total") >= 12
    # Best-effort audit: the outage shows in /readyz, and readiness holds.
    assert status == 200 and during_outage["store"]["redis_reachable"] is False
    assert during_outage["store"]["audit_spool"]["records"] > 0


def test_redis_frozen_past_its_timeout_loses_no_audit_record(make_proxy, scripted, own_redis) -> None:
    proxy = make_proxy(redis_url=own_redis.url)
    try:
        with Traffic(proxy) as traffic:
            traffic.until(3)
            own_redis.freeze()
            traffic.until(len(traffic.sent) + 12)
            own_redis.thaw()
            traffic.until(len(traffic.sent) + 5)
    finally:
        own_redis.thaw()
    assert traffic.failures == []
    assert_every_record_arrived_in_order(proxy, own_redis, traffic.sent)
    assert metric(proxy, "heedful_audit_spooled_total") >= 12


# A proxy process reduced to its store (no model to load, so the test stays short): it writes audit records through the
# store while Redis is down, says how many wait in its spool, and is then killed with SIGKILL, no shutdown.
_CRASHING_WRITER = """
import asyncio, sys
from app.config import Settings
from app.metrics import Metrics
from app.store import open_redis_store

async def main() -> None:
    store = open_redis_store(Settings(redis_url=sys.argv[1], audit_spool_dir=sys.argv[2]), Metrics())
    await store.start()
    for n in range(4):
        await store.append_audit({"request_id": f"before-crash-{n}"}, review=n == 2)
    print((await store.health())["audit_spool"]["records"], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_records_spooled_before_a_crash_are_sent_after_restart(make_proxy, scripted, own_redis, tmp_path) -> None:
    own_redis.stop()
    spool_dir = tmp_path / "crash-spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")} | {"PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, own_redis.url, str(spool_dir)], env=env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdout is not None
        spooled_before_crash = writer.stdout.readline().strip()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=10)  # reaps it and closes the pipe
    own_redis.start()
    restarted = make_proxy(redis_url=own_redis.url, audit_spool_dir=spool_dir)
    sent = [f"before-crash-{n}" for n in range(4)]
    assert_every_record_arrived_in_order(restarted, own_redis, sent)
    assert spooled_before_crash == "4"
    review = redis.Redis.from_url(own_redis.url).xrange("heedful:review")
    assert [json.loads(fields[b"record"])["request_id"] for _, fields in review] == ["before-crash-2"]


def test_spool_bound_drops_are_counted_and_fail_readiness_where_audit_is_required(make_proxy, scripted,
                                                                                   own_redis) -> None:
    own_redis.stop()
    proxy = make_proxy(redis_url=own_redis.url, audit_spool_max_records=3, audit_required=True)
    sent = [ask(proxy) for _ in range(5)]  # requests never fail on audit: two records fall past the bound
    assert metric(proxy, 'heedful_audit_dropped_total{reason="spool_full"}') == 2
    status, ready = readiness(proxy)
    assert status == 503 and ready["status"] == "not_ready"
    assert ready["store"]["audit_spool"]["records"] == 3 and ready["store"]["audit_records_dropped"] == 2
    assert ready["store"]["audit_at_risk"] == "the audit spool is full"
    own_redis.start()
    assert wait_for(lambda: stream_request_ids(own_redis.url) == sent[:3])
    assert wait_for(lambda: readiness(proxy)[0] == 200)  # room again: ready again




def test_audit_export_writes_each_record_once(redis_server, tmp_path) -> None:
    """A re-send is at least once: copies of a record in the stream are exported once, by record_id."""
    from app.cli import main

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    for record_id in ("a", "b", "a", "c", "b"):
        client.xadd(AUDIT_STREAM, {"record": json.dumps({"record_id": record_id, "request_id": f"r-{record_id}"})})
    out = tmp_path / "audit.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "export", "--redis-url", redis_server.url, "--output", str(out)])
    assert exit_info.value.code == 0
    assert [json.loads(line)["record_id"] for line in out.read_text().splitlines()] == ["a", "b", "c"]
