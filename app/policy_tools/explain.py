"""`heedful policy explain`: one conversation and draft through one policy, step by step, in words."""

from __future__ import annotations

import textwrap
from typing import Any

from app.policy.loader import LoadedPolicy
from app.policy_tools.conditions import explain_condition
from app.policy.engine import evaluate, policy_values
from app.policy_tools.outcome import effect_of, facts_for
from classifiers import Scorer, Scores


def explain(policy: LoadedPolicy, scorer: Scorer, messages: list[dict[str, Any]], reply: str, model: str | None = None,
            tenant: str | None = None, scores: Scores | None = None) -> str:
    """`scores`: ones already known (a recorded decision's), so the texts need not be there to explain it."""
    scores = scorer.score(messages, reply) if scores is None else scores
    facts = facts_for(policy, messages, model, tenant)
    values = policy_values(scores, scorer.thresholds, facts, 0)
    verdict = evaluate(policy, values)
    thresholds = scorer.thresholds
    out = [f"policy {policy.name} v{policy.version} ({policy.file}), mode {policy.document.spec.mode}", "",
           "scores (model threshold in brackets):"]
    for group in ("reply", "context"):
        for name, value in values[group].items():
            mark = "  <- flagged" if name in values["flags"] else ""
            out.append(f"  {group + '.' + name:<30} {value:.3f}  [{thresholds.get(name, 0.5):.3f}]{mark}")
    out.append(f"  flags: {', '.join(values['flags']) or '(none)'}")
    if scores.crisis_evidence:
        out.append(f"  crisis phrase or warning sign found: {scores.crisis_evidence!r}")
    out += ["", "rules, in order (the first that holds decides; a rule marked `continue` applies and lets later rules decide):"]
    for index, rule in enumerate(policy.document.spec.rules, start=1):
        lines = explain_condition(rule.when, values)
        held = policy.conditions[index - 1].holds(values)
        if verdict.rule is not None and rule.name == verdict.rule.name:
            status = "FIRES"
        elif rule in verdict.also:
            status = "APPLIES, continues"
        elif verdict.rule is not None and index - 1 > policy.document.spec.rules.index(verdict.rule):
            status = "not reached" + (" (would also hold)" if held else "")
        else:
            status = "holds" if held else "does not hold"
        out.append(f"  {index}. {rule.name} -> {rule.action.value}: {status}")
        out += [f"       {line}" for line in lines]
        if len(lines) > 1:
            out.append(f"       = {'true' if held else 'false'}")
    out += ["", f"decision: rule {verdict.rule_name}, action {verdict.action.value}"]
    if verdict.also and verdict.rule is not None:
        out.append("also applied: " + ", ".join(f"{rule.name} ({rule.action.value})" for rule in verdict.also))
    effect = effect_of(policy, verdict, reply)
    out.append(f"effect: {effect.summary}")
    if effect.text:
        out += ["", textwrap.indent(effect.text, "  | ")]
    return "\n".join(out)
