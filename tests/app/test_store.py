"""Shared state on a real Redis server: audit stream, score cache, tenant budgets, and surviving Redis going away."""

from __future__ import annotations

import time

import httpx
import redis

from app.scripted_upstream import SCENARIOS
from app.store import AUDIT_STREAM
from tests.conftest import SLOW_MACHINE_REDIS_TIMEOUT_S, client_for

PACIFYING = next(s for s in SCENARIOS if s.name == "pacification")
GOOD = next(s for s in SCENARIOS if s.name == "good")


def ask(proxy, text: str, tenant: str = "default"):  # type: ignore[no-untyped-def]
    return client_for(proxy).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": text}], extra_headers={"x-heedful-tenant": tenant})


def audit_settled(proxy) -> None:  # type: ignore[no-untyped-def]
    """Wait until no audit record waits in the spool: on a loaded machine a write slower than the Redis timeout is
    spooled and re-sent a moment later, in order (tests/app/test_audit_durability.py)."""
    deadline = time.monotonic() + 10
    while httpx.get(f"{proxy.url}/readyz").json()["store"]["audit_spool"]["records"] and time.monotonic() < deadline:
        time.sleep(0.1)


def test_audit_records_and_score_cache_live_in_redis(make_proxy, redis_server, scripted) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S)
    ask(proxy, GOOD.user)
    ask(proxy, GOOD.user)
    audit_settled(proxy)
    entries = client.xrange(AUDIT_STREAM)
    assert len(entries) == 2
    assert b'"rule": "none"' in entries[0][1][b"record"]
    assert b"presentation" not in entries[0][1][b"record"]  # texts are kept only where the policy enables it
    assert len(client.keys("heedful:scores:*")) == 1  # the second identical draft was served from the cache


def test_audit_stream_is_bounded(make_proxy, redis_server, scripted) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S, audit_maxlen=5)
    for _ in range(8):
        ask(proxy, GOOD.user)
    audit_settled(proxy)
    assert client.xlen(AUDIT_STREAM) <= 8  # approximate trimming never drops below maxlen
    client.xtrim(AUDIT_STREAM, maxlen=5, approximate=False)
    assert client.xlen(AUDIT_STREAM) == 5


def test_regeneration_budget_is_per_tenant(make_proxy, policy_dir, redis_server, scripted) -> None:
    redis.Redis.from_url(redis_server.url).flushdb()
    text = (policy_dir / "default.yaml").read_text().replace("    on_exhausted: best", "    on_exhausted: best\n    regenerations_per_minute: 1")
    (policy_dir / "default.yaml").write_text(text)
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S, score_cache_ttl_s=0)
    assert ask(proxy, PACIFYING.user, tenant="acme").headers["x-heedful-outcome"] == "repaired"
    second = ask(proxy, PACIFYING.user, tenant="acme")
    assert second.headers["x-heedful-outcome"] == "exhausted_best"
    assert second.parse().choices[0].message.content == PACIFYING.draft
    assert ask(proxy, PACIFYING.user, tenant="globex").headers["x-heedful-outcome"] == "repaired"


def test_proxy_keeps_answering_when_redis_stops_and_reconnects(make_proxy, redis_server, scripted) -> None:
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=0.2)
    assert ask(proxy, GOOD.user).http_response.status_code == 200
    redis_server.stop()
    try:
        started = time.perf_counter()
        raw = ask(proxy, PACIFYING.user)
        assert raw.http_response.status_code == 200
        assert raw.parse().choices[0].message.content == PACIFYING.repaired
        assert time.perf_counter() - started < 5
        metrics = httpx.get(f"{proxy.url}/metrics").text
        assert "heedful_redis_up 0.0" in metrics
        assert 'heedful_guard_failures_total{kind="redis"} 0.0' not in metrics
    finally:
        redis_server.start()
    time.sleep(1.1)  # the store retries Redis after a one-second pause
    ask(proxy, GOOD.user)
    assert "heedful_redis_up 1.0" in httpx.get(f"{proxy.url}/metrics").text
    assert redis.Redis.from_url(redis_server.url).xlen(AUDIT_STREAM) >= 1


def test_score_cache_keys_carry_the_model_identity(make_proxy, redis_server, scripted, tmp_path) -> None:
    """Replicas sharing Redis across a model or threshold rollout never serve each other's scores."""
    import json
    import shutil

    from classifiers import DEFAULT_MODEL_DIR

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    ask(make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S), GOOD.user)
    rolled = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, rolled)
    thresholds = json.loads((rolled / "thresholds.json").read_text())
    thresholds["thresholds"]["pacification"] = 0.01
    (rolled / "thresholds.json").write_text(json.dumps(thresholds))
    ask(make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S, model_path=rolled), GOOD.user)
    assert len(client.keys("heedful:scores:*")) == 2  # same conversation and draft, two models: two entries


def test_shutdown_waits_for_the_audit_of_a_finished_stream(make_proxy, redis_server, scripted) -> None:
    """A stream's audit record is written after the last byte; stopping the proxy right then must not lose it."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    long_reply = "That sounds like a lot to carry, and it makes sense that it keeps coming back. " * 250
    scripted.overrides["moving flat"] = (long_reply, long_reply)
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S)
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", timeout=30, json={
            "model": "m", "stream": True, "messages": [{"role": "user", "content": "moving flat this week, tired"}]}) as r:
        assert [line for line in r.iter_lines() if line.startswith("data: ")][-1] == "data: [DONE]"
    proxy.__exit__(None, None, None)
    records = client.xrange(AUDIT_STREAM)
    assert len(records) == 1 and b'"stream": true' in records[0][1][b"record"]


async def test_drain_waits_for_background_work_and_cancels_past_the_deadline() -> None:
    import asyncio

    from app.services import Services

    services = Services.__new__(Services)
    services.background = set()
    done: list[str] = []

    async def audit(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        done.append(name)

    services.spawn(audit("slow but in time", 0.2))
    services.spawn(audit("too slow", 5.0))
    assert await services.drain(0.5) == 1
    assert done == ["slow but in time"]


def test_audit_export_writes_the_records_replay_reads(make_proxy, redis_server, scripted, tmp_path, capsys) -> None:
    import json

    import pytest

    from app.cli import main

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S)
    for _ in range(3):
        ask(proxy, GOOD.user)
    audit_settled(proxy)
    out = tmp_path / "audit.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "export", "--redis-url", redis_server.url, "--output", str(out)])
    assert exit_info.value.code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and all(r["policy"] == "default" and r["request_id"] for r in records)
    with pytest.raises(SystemExit):
        main(["audit", "export", "--redis-url", redis_server.url, "--last", "1"])
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_a_client_cannot_pick_another_tenant_over_a_mapped_key(make_proxy, policy_dir, redis_server, scripted) -> None:
    """Where API keys are mapped, the header is not trusted: rotating it must not buy unlimited repairs."""
    redis.Redis.from_url(redis_server.url).flushdb()
    text = (policy_dir / "default.yaml").read_text().replace("    on_exhausted: best", "    on_exhausted: best\n    regenerations_per_minute: 1")
    (policy_dir / "default.yaml").write_text(text)
    proxy = make_proxy(redis_url=redis_server.url, redis_timeout_s=SLOW_MACHINE_REDIS_TIMEOUT_S, score_cache_ttl_s=0, tenant_keys={"sk-test-client-key": "acme"})
    assert ask(proxy, PACIFYING.user, tenant="first").headers["x-heedful-outcome"] == "repaired"
    assert ask(proxy, PACIFYING.user, tenant="second").headers["x-heedful-outcome"] == "exhausted_best"
