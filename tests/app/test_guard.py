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

    async def score(self, messages: Any, prepared: PreparedContext, replies: list[str], window_cache: Any = None) -> Any:
        await asyncio.sleep(STAGE_S)
        return self.scorer.score_replies([prepared], replies)


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
