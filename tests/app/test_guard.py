"""The guard's own bounds: the scoring timeout is one bound for the whole scoring step, not one per stage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from app.guard import Guard
from app.metrics import Metrics
from app.openai.protocol import ChatCompletionRequest
from app.policy.engine import RequestFacts
from app.policy.loader import parse_policy
from classifiers import PreparedContext, Scorer

POLICIES = Path(__file__).resolve().parents[2] / "policies"
STAGE_S = 0.13  # each stage alone fits in the 0.2 s budget; both together do not


class SlowScoring:
    """The real scorer behind a deliberate delay, standing in for a loaded machine."""

    def __init__(self) -> None:
        self.scorer = Scorer()

    @property
    def thresholds(self) -> dict[str, float]:
        return self.scorer.thresholds

    async def score(self, messages: Any, prepared: Any, replies: list[str], window_cache: Any = None) -> Any:
        # As a model whose reply pass needs the context pass: the two stages run one after the other.
        context = prepared if isinstance(prepared, PreparedContext) else await prepared
        await asyncio.sleep(STAGE_S)
        return self.scorer.score_replies([context], replies)


def test_scoring_timeout_bounds_context_and_reply_together() -> None:
    text = (POLICIES / "default.yaml").read_text().replace("max_attempts: 2 ", "scoring_timeout_ms: 200\n    max_attempts: 2 ")
    policy = parse_policy(text, "default.yaml")
    assert policy.document.spec.limits.scoring_timeout_ms == 200
    scoring = SlowScoring()
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    async def slow_context() -> PreparedContext:
        await asyncio.sleep(STAGE_S)
        return scoring.scorer.prepare(messages)

    async def main() -> Any:
        guard = Guard(scoring, None, None, Metrics())  # type: ignore[arg-type]
        request = ChatCompletionRequest(model="m", messages=messages)  # type: ignore[arg-type]
        return await guard.decide(policy, request, RequestFacts("m", "default", False, 1), messages,
                                  asyncio.ensure_future(slow_context()), "Paris.", None)

    decision = asyncio.run(main())
    assert decision.failure == "scoring_timeout"
    assert decision.outcome == "failed_open" and decision.text == "Paris."


def test_a_condition_failing_at_run_time_is_refused_at_load() -> None:
    """`attempt / (attempt - 1)` divides by zero on the first repair: caught when the policy loads, not per request."""
    import pytest

    from app.policy.errors import PolicyError

    text = (POLICIES / "default.yaml").read_text().replace('when: "reply.sycophancy_social >= 0.2"',
                                                            'when: "attempt / (attempt - 1) > 5"')
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "default.yaml")
    assert "attempt 1" in str(info.value) and "ZeroDivisionError" in str(info.value)


def test_a_condition_failing_at_run_time_follows_the_failure_mode(monkeypatch) -> None:
    """Should a condition still fail on a value no probe tried, the policy's failure mode decides; no 500."""
    from app.policy.cel_env import Condition, ConditionError

    policy = parse_policy((POLICIES / "default.yaml").read_text(), "default.yaml")
    scoring = SlowScoring()
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    def broken(self: Condition, values: Any) -> bool:
        raise ConditionError("condition failed: ZeroDivisionError")

    monkeypatch.setattr(Condition, "holds", broken)

    async def main() -> Any:
        guard = Guard(scoring, None, None, Metrics())  # type: ignore[arg-type]
        request = ChatCompletionRequest(model="m", messages=messages)  # type: ignore[arg-type]
        prepared = asyncio.ensure_future(asyncio.sleep(0, scoring.scorer.prepare(messages)))
        return await guard.decide(policy, request, RequestFacts("m", "default", False, 1), messages, prepared, "Paris.", None)

    decision = asyncio.run(main())
    assert decision.failure is not None and decision.failure.startswith("policy_error")
    assert decision.outcome == "failed_open" and decision.text == "Paris."


def test_a_decision_is_a_value() -> None:
    """Nothing changes a Decision after the guard returns it; later facts make a new one."""
    import dataclasses

    import pytest

    from app.guard import Decision

    policy = parse_policy((POLICIES / "default.yaml").read_text(), "default.yaml")
    decision = Decision(policy=policy, text="hi", draft="hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.text = "changed"  # type: ignore[misc]
    assert dataclasses.replace(decision, text="changed").text == "changed" and decision.text == "hi"
