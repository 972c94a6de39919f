"""Repair budgets while Redis is down: two replicas sharing one Redis stay within budget + one replica's share."""

from __future__ import annotations

import time

import httpx

from app.scripted_upstream import SCENARIOS
from tests.conftest import RedisServer, client_for

PACIFYING = next(s for s in SCENARIOS if s.name == "pacification")
BUDGET, REPLICAS = 4, 2
SHARE = BUDGET // REPLICAS


def outcome(proxy) -> str:  # type: ignore[no-untyped-def]
    raw = client_for(proxy).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": PACIFYING.user}], extra_headers={"x-heedful-tenant": "acme"})
    assert raw.http_response.status_code == 200
    return raw.headers["x-heedful-outcome"]


def test_two_replicas_stay_within_budget_plus_one_share_when_redis_fails(make_proxy, policy_dir, scripted, tmp_path,
                                                                          monkeypatch) -> None:
    text = (policy_dir / "default.yaml").read_text().replace(
        "    on_exhausted: best", f"    on_exhausted: best\n    regenerations_per_minute: {BUDGET}")
    (policy_dir / "default.yaml").write_text(text)
    # Budgets count per minute: the whole test is one minute, wherever the clock is.
    monkeypatch.setattr("app.store.minute_now", lambda: 29_000_000, raising=False)
    server = RedisServer(data_dir=tmp_path)  # keeps its counters across the outage, as a real deployment's would
    server.start()
    try:
        settings = {"redis_url": server.url, "score_cache_ttl_s": 0, "budget_replicas": REPLICAS}
        first, second = make_proxy(**settings), make_proxy(**settings)
        before = [outcome(first)]  # one repair counted in Redis, seen by the first replica
        assert before == ["repaired"]
        server.kill()
        during = [outcome(proxy) for proxy in (first, second) for _ in range(5)]
        server.start()
        time.sleep(1.2)  # each proxy tries Redis again a second after its last failure
        after = [outcome(proxy) for proxy in (first, second) for _ in range(3)]
    finally:
        server.stop()
    # Each replica spent only its share while Redis was down (the first one's view of Redis would have allowed 3).
    assert during[:5].count("repaired") == SHARE and during[5:].count("repaired") == SHARE, during
    repairs = sum(outcomes.count("repaired") for outcomes in (before, during, after))
    assert repairs <= BUDGET + SHARE, (before, during, after)  # the repairs allowed locally count once Redis is back
    for proxy in (first, second):
        metrics = httpx.get(f"{proxy.url}/metrics").text
        assert f'heedful_budget_fallback_decisions_total{{outcome="allowed"}} {float(SHARE)}' in metrics
        assert 'heedful_budget_fallback_decisions_total{outcome="denied"} 3.0' in metrics


def test_local_share_never_exceeds_what_redis_last_reported() -> None:
    from app.budget_fallback import FallbackBudgets

    budgets = FallbackBudgets(replicas=2)
    budgets.saw("acme", 7, 9)  # the budget of 10 is nearly spent according to Redis
    assert [budgets.take("acme", 10, 7) for _ in range(3)] == [True, False, False]
    assert [budgets.take("globex", 10, 7) for _ in range(6)] == [True] * 5 + [False]
    assert budgets.take("acme", 10, 8)  # a new minute, a new share


def test_a_zero_budget_allows_nothing_and_a_small_one_at_least_one_per_replica() -> None:
    from app.budget_fallback import FallbackBudgets

    budgets = FallbackBudgets(replicas=3)
    assert not budgets.take("acme", 0, 7)
    assert [budgets.take("globex", 2, 7) for _ in range(2)] == [True, False]

