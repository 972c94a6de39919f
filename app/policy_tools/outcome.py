"""A policy's decision on a scored draft without the proxy: request facts for offline use, and what the chosen action
would produce. Repairs are described, never performed: no LLM is called. Variables come from engine.policy_values, as in
the proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.corrective import instruction_for
from app.policy.engine import RequestFacts, Verdict
from app.policy.loader import LoadedPolicy
from app.policy.model import REPAIR_ACTIONS, Action


def facts_for(policy: LoadedPolicy, messages: list[dict[str, Any]], model: str | None = None, tenant: str | None = None,
              stream: bool = False) -> RequestFacts:
    """Request facts for an offline decision; the tenant and model default to ones the policy's match accepts."""
    match = policy.document.spec.match
    tenant = tenant or (match.tenants[0] if match.tenants else "default")
    model = model or (match.models[0].replace("*", "x") if match.models else "replay")
    return RequestFacts(model, tenant, stream, sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user"))


@dataclass(frozen=True)
class Effect:
    """What the user would get: a one-line summary and the text (the fixed text, the result, or the instruction)."""

    summary: str
    text: str | None = None


def effect_of(policy: LoadedPolicy, verdict: Verdict, draft: str) -> Effect:
    """What the user would get. Continuing rules (crisis resources) wrap whatever the deciding rule does."""
    prefix = "".join(f"{r.text}\n\n" for r in verdict.also if r.action == Action.prepend and r.text)
    suffix = "".join(f"\n\n{r.text}" for r in verdict.also if r.action == Action.append and r.text)
    effect = _deciding_effect(policy, verdict, draft)
    if not (prefix or suffix) or verdict.rule is None:
        if verdict.rule is None and (prefix or suffix):
            return Effect("fixed text is added around the draft (a continuing rule)", f"{prefix}{draft}{suffix}")
        return effect
    if verdict.rule.action in REPAIR_ACTIONS:
        return Effect(f"the fixed text goes out first, then: {effect.summary}", f"{prefix}[repaired reply]{suffix}\n\n"
                      f"instruction: {effect.text}")
    return Effect(f"the fixed text goes out first, then: {effect.summary}", f"{prefix}{effect.text or draft}{suffix}")


def _deciding_effect(policy: LoadedPolicy, verdict: Verdict, draft: str) -> Effect:
    spec = policy.document.spec
    rule = verdict.rule
    shadow = " (shadow mode: the user would still get the original draft; the change is only recorded)" if spec.mode == "shadow" else ""
    if rule is None or rule.action == Action.allow:
        return Effect("the draft goes to the user unchanged")
    if rule.action == Action.annotate:
        return Effect("the draft goes to the user unchanged; the decision is recorded in headers and the audit log")
    if rule.action == Action.escalate:
        return Effect("the draft goes to the user unchanged and is flagged for human review")
    if rule.action == Action.append:
        return Effect("this text is added after the draft" + shadow, f"{draft}\n\n{rule.text}")
    if rule.action == Action.prepend:
        return Effect("this text is placed before the draft" + shadow, f"{rule.text}\n\n{draft}")
    if rule.action == Action.replace:
        return Effect("the draft is replaced by this text" + shadow, rule.text)
    assert rule.action in REPAIR_ACTIONS
    instruction = instruction_for(rule.label, dict(spec.instructions), rule.instruction)
    if rule.action == Action.rewrite:
        how = "the model is asked to revise the draft with this instruction"
    else:
        n = rule.candidates
        how = f"the model is asked for {n} new draft{'s' if n > 1 else ''} with this instruction"
    limits = spec.limits
    how += f" (at most {rule.max_attempts or limits.max_attempts} attempt(s); when they run out: {limits.on_exhausted})"
    return Effect(how + shadow, instruction)
