"""Evaluate a policy's rules in order against a draft's scores: the first rule whose condition holds decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.policy.cel_env import bind
from app.policy.loader import LoadedPolicy
from app.policy.model import Action, Rule
from app.users.profile import NO_USER, UserView
from classifiers import Scores
from classifiers.labels import flags_of

ALLOW_RULE = "none"


@dataclass(frozen=True)
class RequestFacts:
    model: str
    tenant: str
    stream: bool
    turns: int
    user: UserView = field(default=NO_USER)  # what is remembered about the user (app/users/), neutral when unknown


def request_facts(model: str, tenant: str, stream: bool, messages: list[dict[str, Any]]) -> RequestFacts:
    """The one builder of the request facts a condition sees (the proxy, /v1/guard/score and the offline tools)."""
    return RequestFacts(model, tenant, stream, sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user"))


@dataclass(frozen=True)
class Verdict:
    rule: Rule | None
    attempt: int
    also: tuple[Rule, ...] = ()  # additive rules with `continue: true` that held before the deciding rule

    @property
    def shown_rule(self) -> Rule | None:
        """The deciding rule, or else the last continuing rule that applied (crisis resources alone, say)."""
        return self.rule if self.rule else (self.also[-1] if self.also else None)

    @property
    def rule_name(self) -> str:
        shown = self.shown_rule
        return shown.name if shown else ALLOW_RULE

    @property
    def action(self) -> Action:
        shown = self.shown_rule
        return shown.action if shown else Action.allow


def variables(reply: dict[str, float], context: dict[str, float], facts: RequestFacts, attempt: int, flags: list[str]) -> dict[str, Any]:
    return {
        "reply": {k: float(v) for k, v in reply.items()},
        "context": {k: float(v) for k, v in context.items()},
        "request": {"model": facts.model, "tenant": facts.tenant, "stream": facts.stream, "turns": facts.turns},
        "attempt": attempt,
        "flags": list(flags),
        "user": facts.user.variables(context.get("distress")),
    }


def policy_values(scores: Scores, thresholds: dict[str, float], facts: RequestFacts, attempt: int) -> dict[str, Any]:
    """The variables a condition sees: scores, context signals, request facts, the attempt, and flags (the one flag
    contract of classifiers.labels.flags_of, as in `heedful score` and /v1/guard/score). The proxy and the offline tools
    both use this."""
    return variables(scores.reply, scores.context, facts, attempt, flags_of(scores.reply, scores.context, thresholds))


def leading_prefix_rules(policy: LoadedPolicy, context_values: dict[str, Any]) -> tuple[Rule, ...]:
    """The continuing `prepend` rules at the head of the policy whose conditions read no reply score and hold on the
    context alone: their texts (crisis resources) can go out before the draft exists. Only the leading block counts, so
    no earlier deciding rule could have stopped them."""
    found = []
    bound = bind(context_values)
    for rule, condition in zip(policy.document.spec.rules, policy.conditions, strict=True):
        if not rule.continue_:
            break
        if rule.action == Action.prepend and "reply." not in rule.when and condition.holds(bound):
            found.append(rule)
    return tuple(found)


def evaluate(policy: LoadedPolicy, values: dict[str, Any]) -> Verdict:
    """The first rule that holds decides; additive rules marked `continue` that hold on the way are kept in `also`."""
    also: list[Rule] = []
    bound = bind(values)
    for rule, condition in zip(policy.document.spec.rules, policy.conditions, strict=True):
        if condition.holds(bound):
            if rule.continue_:
                also.append(rule)
                continue
            return Verdict(rule, values["attempt"], tuple(also))
    return Verdict(None, values["attempt"], tuple(also))
