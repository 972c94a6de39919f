"""Models pass-through, the guard scoring endpoint, health, readiness and metrics."""

from __future__ import annotations

import httpx

from app.scripted_upstream import SCENARIOS
from tests.conftest import client_for

PACIFYING = next(s for s in SCENARIOS if s.name == "pacification")


def test_models_pass_through(proxy) -> None:
    models = client_for(proxy).models.list()
    assert [m.id for m in models.data] == ["scripted-empathy-1"]


def test_guard_score_returns_scores_and_the_policy_verdict(proxy, scripted) -> None:
    r = httpx.post(f"{proxy.url}/v1/guard/score", json={"messages": [{"role": "user", "content": PACIFYING.user}],
                                                        "reply": PACIFYING.draft})
    body = r.json()
    assert r.status_code == 200
    assert set(body["scores"]) == {"pacification", "sycophancy", "rushed_advice"}
    assert set(body["context"]) == {"distress", "crisis", "advice_requested"}
    assert body["scores"]["pacification"] >= body["thresholds"]["pacification"]
    assert body["rule"] == "repair-pacification" and body["action"] == "regenerate"
    assert scripted.requests == []  # no LLM was called


def test_guard_score_rejects_a_conversation_not_ending_with_the_user(proxy) -> None:
    r = httpx.post(f"{proxy.url}/v1/guard/score", json={"messages": [{"role": "assistant", "content": "hi"}], "reply": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


def test_health_ready_and_metrics(proxy) -> None:
    assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{proxy.url}/readyz").json()
    assert ready["status"] == "ready" and ready["policies"] == {"default": "2"}
    client_for(proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": PACIFYING.user}])
    metrics = httpx.get(f"{proxy.url}/metrics").text
    for name in ("heedful_requests_total", "heedful_score_bucket", "heedful_scoring_seconds_bucket",
                 "heedful_upstream_seconds_bucket", "heedful_added_latency_seconds_bucket", "heedful_regenerations_total",
                 "heedful_policy_reloads_total", "heedful_in_flight_requests", "heedful_policy_latency_budget_seconds"):
        assert name in metrics
    assert 'heedful_requests_total{action="regenerate",policy="default",rule="repair-pacification",stream="false"} 1.0' in metrics


def test_guard_score_has_the_scoring_bound_and_the_failure_mode(make_proxy, policy_dir) -> None:
    """/v1/guard/score goes through the guard: the policy's scoring timeout bounds it and its failure mode answers."""
    path = policy_dir / "default.yaml"
    path.write_text(path.read_text().replace("max_attempts: 2 ", "scoring_timeout_ms: 10\n    max_attempts: 2 ")
                    .replace("failure_mode: open", "failure_mode: closed"))
    proxy = make_proxy()
    turns = [{"role": "user", "content": "We moved cities in spring and it has been lonely, honestly. " * 20}] * 3
    body = {"messages": turns, "reply": "That sounds isolating, and the evenings seem to be the hardest part. " * 60}
    result = httpx.post(f"{proxy.url}/v1/guard/score", json=body, timeout=30).json()
    assert result["failure"] == "scoring_timeout"
    assert result["rule"] == "failure" and result["action"] == "replace"
