"""Evaluate a policy's rules in order against a draft's scores: the first rule whose condition holds decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.policy.loader import LoadedPolicy
from app.policy.model import Action, Rule
from classifiers import Scores

ALLOW_RULE = "none"


@dataclass(frozen=True)
class RequestFacts:
    model: str
    tenant: str
    stream: bool
    turns: int


@dataclass(frozen=True)
class Verdict:
    rule: Rule | None
    attempt: int

    @property
    def rule_name(self) -> str:
        return self.rule.name if self.rule else ALLOW_RULE

    @property
    def action(self) -> Action:
        return self.rule.action if self.rule else Action.allow


def variables(reply: dict[str, float], context: dict[str, float], facts: RequestFacts, attempt: int, flags: list[str]) -> dict[str, Any]:
    return {
        "reply": {k: float(v) for k, v in reply.items()},
        "context": {k: float(v) for k, v in context.items()},
        "request": {"model": facts.model, "tenant": facts.tenant, "stream": facts.stream, "turns": facts.turns},
        "attempt": attempt,
        "flags": list(flags),
    }


def policy_values(scores: Scores, thresholds: dict[str, float], facts: RequestFacts, attempt: int) -> dict[str, Any]:
    """The variables a condition sees: scores, context signals, request facts, the attempt, and flags (the reply labels
    and context signals at or above the model's recommended thresholds). The proxy and the offline tools both use this."""
    context_flags = [name for name, p in scores.context.items() if p >= thresholds.get(name, 0.5)]
    return variables(scores.reply, scores.context, facts, attempt, [*scores.flags, *context_flags])


def evaluate(policy: LoadedPolicy, values: dict[str, Any]) -> Verdict:
    for rule, condition in zip(policy.document.spec.rules, policy.conditions, strict=True):
        if condition.holds(values):
            return Verdict(rule, values["attempt"])
    return Verdict(None, values["attempt"])
