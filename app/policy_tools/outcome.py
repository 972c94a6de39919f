"""A policy's decision on a scored draft without the proxy: request facts for offline use, and what the chosen action
would produce. Repairs are described, never performed: no LLM is called. Variables come from engine.policy_values, as in
the proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.corrective import instruction_for
from app.policy.effects import compose
from app.policy.engine import RequestFacts, Verdict, request_facts
from app.policy.loader import LoadedPolicy
from app.policy.model import REPAIR_ACTIONS, Action
from app.users.profile import NO_USER, UserView


def facts_for(policy: LoadedPolicy, messages: list[dict[str, Any]], model: str | None = None, tenant: str | None = None,
              stream: bool = False) -> RequestFacts:
    """Request facts for an offline decision; the tenant and model default to ones the policy's match accepts."""
    match = policy.document.spec.match
    tenant = tenant or (match.tenants[0] if match.tenants else "default")
    model = model or (match.models[0].replace("*", "x") if match.models else "replay")
    return request_facts(model, tenant, stream, messages)


@dataclass(frozen=True)
class Effect:
    """What the user would get: a one-line summary and the text (the fixed text, the result, or the instruction)."""

    summary: str
    text: str | None = None


def effect_of(policy: LoadedPolicy, verdict: Verdict, draft: str, user: UserView = NO_USER) -> Effect:
    """What the user would get, composed exactly as the proxy composes it (app.policy.effects)."""
    spec = policy.document.spec
    shadow = " (shadow mode: the user would still get the original draft; the change is only recorded)" if spec.mode == "shadow" else ""
    rule = verdict.rule
    fixed = [*verdict.also, *([rule] if rule is not None else [])]
    around = compose(verdict.also, "")
    if rule is not None and rule.action in REPAIR_ACTIONS:
        instruction = instruction_for(rule.label, {str(k): v for k, v in spec.instructions.items()}, rule.instruction,
                                      user)
        if rule.action == Action.rewrite:
            how = "the model is asked to revise the draft with this instruction"
        else:
            n = rule.candidates
            how = f"the model is asked for {n} new draft{'s' if n > 1 else ''} with this instruction"
        limits = spec.limits
        how += f" (at most {rule.max_attempts or limits.max_attempts} attempt(s); when they run out: {limits.on_exhausted})"
        if around.prefix or around.suffix:
            return Effect(f"the fixed text goes out first, then {how}{shadow}",
                          f"{around.prefix}[repaired reply]{around.suffix}\n\ninstruction: {instruction}")
        return Effect(how + shadow, instruction)
    composed = compose(fixed, draft)
    if composed.text == draft:
        if composed.review:
            return Effect("the draft goes to the user unchanged and is flagged for human review")
        if rule is not None and rule.action == Action.annotate:
            return Effect("the draft goes to the user unchanged; the decision is recorded in headers and the audit log")
        return Effect("the draft goes to the user unchanged")
    parts = []
    if composed.body != draft:
        parts.append("the draft is replaced by fixed text")
    if composed.prefix:
        parts.append("fixed text is placed before the draft" if composed.body == draft else "fixed text goes before it")
    if composed.suffix:
        parts.append("fixed text is added after the draft" if composed.body == draft else "fixed text goes after it")
    return Effect("; ".join(parts) + shadow, composed.text)
